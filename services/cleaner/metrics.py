"""Every metric of the cleaner, declared together."""

from __future__ import annotations

from shared.metrics import ServiceMetrics

METRICS = ServiceMetrics("cleaner")
RECORDS_IN = METRICS.counter("records_in_total", "Raw records consumed, by type", ["type"])
RECORDS_OUT = METRICS.counter("records_out_total", "Clean records produced, by type", ["type"])
DLQ = METRICS.counter("dlq_total", "Records sent to the DLQ, by reason", ["reason"])
PROCESS_SECONDS = METRICS.histogram(
    "process_seconds", "Time to clean one record", buckets=(1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 1e-2, 0.1)
)
