"""Every metric of the cleaner, declared together."""

from __future__ import annotations

from shared.metrics import ServiceMetrics

METRICS = ServiceMetrics("cleaner")
RECORDS_IN = METRICS.counter("records_in_total", "Raw records consumed, by type", ["type"])
RECORDS_OUT = METRICS.counter("records_out_total", "Clean records produced, by type", ["type"])
DLQ = METRICS.counter("dlq_total", "Records sent to the DLQ, by reason", ["reason"])
BATCH_SECONDS = METRICS.histogram(
    "batch_seconds",
    "Time to clean a batch and commit its transactions (one per partition)",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
RECORD_LATENCY_SECONDS = METRICS.histogram(
    "record_latency_seconds",
    "From a raw record's append to the commit of its clean record (oldest of each partition "
    "in a batch)",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
CONSUMER_LAG = METRICS.gauge(
    "consumer_lag",
    "Raw records not yet committed, by partition (high watermark - committed offset)",
    ["topic", "partition"],
)
ERRORS = METRICS.counter(
    "errors_total", "Failed cleaning steps (each retried with backoff), by error", ["reason"]
)
DROPPED_BATCHES = METRICS.counter(
    "dropped_batches_total", "Batches fetched before a rebalance, left to the new owner"
)
LOOP_RESTARTS = METRICS.counter(
    "loop_restarts_total", "Times the cleaning loop crashed and was started again in place"
)
