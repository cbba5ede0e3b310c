"""Every metric of the ingest API, declared together."""

from __future__ import annotations

from shared.metrics import ServiceMetrics

METRICS = ServiceMetrics("ingest_api")
REQUESTS = METRICS.counter(
    "requests_total", "HTTP requests by route and status code", ["route", "status"]
)
REQUEST_SECONDS = METRICS.histogram("request_seconds", "Request latency by route", ["route"])
RECORDS = METRICS.counter(
    "records_total", "Records produced, by topic and status (ok|error)", ["topic", "status"]
)
REJECTED = METRICS.counter("rejected_total", "Requests refused, by reason", ["reason"])
