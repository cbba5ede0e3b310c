"""Every metric of the emulator, declared together."""

from __future__ import annotations

from shared.metrics import ServiceMetrics

METRICS = ServiceMetrics("emulator")
POSTS = METRICS.counter("posts_total", "Posts sent (pin, geo and user of one row)", ["status"])
REQUESTS = METRICS.counter(
    "requests_total", "HTTP requests to the ingest API by topic and status", ["topic", "status"]
)
RETRIES = METRICS.counter("retries_total", "Requests retried after a transient error", ["reason"])
