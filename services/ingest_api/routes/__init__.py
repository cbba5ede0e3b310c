"""HTTP routes of the ingest API: ``topics`` (REST Proxy v2), ``streams`` (Kinesis-style) and
``service`` (health, readiness, metrics)."""
