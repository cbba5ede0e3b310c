"""services/ingest_api: the original clients' REST API (Kafka REST Proxy v2 topics API) in
front of Kafka. Records are produced with acks=all and idempotence on."""
