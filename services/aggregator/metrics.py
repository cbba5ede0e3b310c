"""Every metric of the aggregator, declared together."""

from __future__ import annotations

from services.aggregator.business_metrics import LiveAnswers
from shared.metrics import ServiceMetrics

METRICS = ServiceMetrics("aggregator")
RECORDS = METRICS.counter(
    "records_total", "Clean records that changed their post (a table write), by type", ["type"]
)
UNCHANGED = METRICS.counter(
    "unchanged_total",
    "Records that changed nothing: replays after a restart, or repeats of what the post holds",
    ["type"],
)
SKIPPED = METRICS.counter(
    "skipped_total", "Clean records that could not be read, by reason", ["reason"]
)
FRESHNESS = METRICS.histogram(
    "freshness_seconds",
    "From a record's ingest time (its Kafka timestamp) to the moment the aggregates include it"
    " (records that changed a post and repeats; not records read again after a restart)",
    buckets=(
        0.005,
        0.01,
        0.025,
        0.05,
        0.075,
        0.1,
        0.15,
        0.2,
        0.3,
        0.5,
        0.75,
        1.0,
        1.5,
        2.5,
        5.0,
        10.0,
        30.0,
        60.0,
    ),
)
POSTS = METRICS.gauge("posts", "Posts in this replica's active partitions (the posts table)")
AGGREGATE_KEYS = METRICS.gauge("aggregate_keys", "Aggregate groups held, over active partitions")
RECOVERY_SECONDS = METRICS.gauge(
    "recovery_seconds",
    "The last recovery: from partitions assigned to tables restored and aggregates rebuilt",
)
RECOVERIES = METRICS.counter("recoveries_total", "Recoveries completed")
CONSUMER_LAG = METRICS.gauge(
    "consumer_lag",
    "Clean records not yet in the aggregates, by partition (high watermark - next offset)",
    ["topic", "partition"],
)
PEER_ERRORS = METRICS.counter(
    "peer_errors_total", "Requests to other replicas for their aggregates that failed"
)
REJECTED = METRICS.counter(
    "rejected_requests_total",
    "HTTP requests refused as client mistakes (4xx), by reason (too_long, bad_window, "
    "window_out_of_range, window_not_taken, unknown_question, not_found, method_not_allowed, "
    "repeated_parameter, not_a_member)",
    ["reason"],
)
# the live answers of the "Business" dashboard, refreshed on each scrape (app.py)
LIVE_ANSWERS = LiveAnswers()
METRICS.registry.register(LIVE_ANSWERS)
RESTARTS = METRICS.counter(
    "restarts_total", "Times the Faust worker stopped on an error and was started again in place"
)
