"""Every metric of the S3 sink, declared together."""

from __future__ import annotations

from shared.metrics import ServiceMetrics

METRICS = ServiceMetrics("s3_sink")
FILES = METRICS.counter(
    "files_total",
    "Parquet files committed to the lake's tables, by zone and type",
    ["zone", "type"],
)
RECORDS = METRICS.counter("records_total", "Records written, by zone and type", ["zone", "type"])
BYTES = METRICS.counter("bytes_total", "Bytes of Parquet written, by zone", ["zone"])
FLUSH_SECONDS = METRICS.histogram("flush_seconds", "Time to write and commit one file", ["zone"])
ERRORS = METRICS.counter("errors_total", "Failed writes (retried), by reason", ["reason"])
SKIPPED = METRICS.counter(
    "skipped_total", "Records of topics with no pin/geo/user suffix, not written", ["reason"]
)
DLQ = METRICS.counter("dlq_total", "Clean-topic records sent to the DLQ, by reason", ["reason"])
CONSUMER_LAG = METRICS.gauge(
    "consumer_lag",
    "Records not yet in a committed file, by partition (high watermark - committed offset)",
    ["topic", "partition"],
)
TABLE_VERSION = METRICS.gauge(
    "table_version", "Version of each lake table after the sink's last commit to it", ["table"]
)
TABLE_FILES = METRICS.gauge(
    "table_files",
    "Data files in each lake table after the sink's last commit to it: the small files "
    "compaction (lake upkeep) has not merged yet, plus the merged ones",
    ["table"],
)
LOOP_RESTARTS = METRICS.counter(
    "loop_restarts_total", "Times the sink loop crashed and was started again in place"
)
