"""Every metric of the aggregator, declared together."""

from __future__ import annotations

from shared.metrics import ServiceMetrics

METRICS = ServiceMetrics("aggregator")
RECORDS = METRICS.counter("records_total", "Clean records applied to the tables, by type", ["type"])
SKIPPED = METRICS.counter(
    "skipped_total", "Clean records that could not be read, by reason", ["reason"]
)
