"""Every metric of the ingest API, declared together."""

from __future__ import annotations

from shared.metrics import ServiceMetrics

METRICS = ServiceMetrics("ingest_api")
REQUESTS = METRICS.counter(
    "requests_total", "HTTP requests by route and status code", ["route", "status"]
)
REQUEST_SECONDS = METRICS.histogram(
    "request_seconds",
    "Request latency by route",
    ["route"],
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BODY_BYTES = METRICS.counter("body_bytes_total", "Request body bytes received, by route", ["route"])
RECORDS = METRICS.counter(
    "records_total",
    "Records produced, by topic (a raw topic's name, or 'stream' for any stream a client "
    "created) and status (ok|error)",
    ["topic", "status"],
)
PRODUCE_SECONDS = METRICS.histogram(
    "produce_seconds",
    "Time from handing a request's records to the producer until Kafka acknowledged them all",
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15),
)
REJECTED = METRICS.counter("rejected_total", "Requests refused, by reason", ["reason"])
INFLIGHT_REQUESTS = METRICS.gauge("inflight_requests", "Requests being served now")
INFLIGHT_BYTES = METRICS.gauge(
    "inflight_bytes", "Body bytes of the requests being served now (declared lengths)"
)
PRODUCER_RESTARTS = METRICS.counter(
    "producer_restarts_total", "Producers replaced because the broker lost their state"
)
