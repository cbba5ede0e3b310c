"""The "Pipeline health" dashboard: is every hop of the flow keeping up, and failing how?

Rows follow the flow: ingest API → cleaner → consumers' lag → S3 sink → aggregator.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from dashboards.panels import RATE, dashboard, graph, percentiles, quantile, query

UID = "pinpipe-pipeline-health"


def build() -> Dashboard:
    ingest = "pinpipe_ingest_api"
    return (
        dashboard("pinpipe / Pipeline health", UID, refresh="10s", since="30m")
        .with_row(Row("Ingest API"))
        .with_panel(
            graph(
                "Requests by status",
                "reqps",
                query(f"sum by (status) (rate({ingest}_requests_total[{RATE}]))", "{{status}}"),
                width=8,
            )
        )
        .with_panel(
            graph(
                "Errors (4xx, 5xx) and refusals by reason",
                "reqps",
                query(
                    f'sum by (status) (rate({ingest}_requests_total{{status=~"[45].."}}[{RATE}]))',
                    "HTTP {{status}}",
                ),
                query(f"sum by (reason) (rate({ingest}_rejected_total[{RATE}]))", "{{reason}}"),
                width=8,
            )
        )
        .with_panel(percentiles("Request latency p50 / p99", f"{ingest}_request_seconds", width=8))
        .with_panel(
            percentiles(
                "Produce latency (records handed to Kafka → acknowledged) p50 / p99",
                f"{ingest}_produce_seconds",
            )
        )
        .with_panel(
            graph(
                "Records produced by topic",
                "rps",
                query(
                    f"sum by (topic, status) (rate({ingest}_records_total[{RATE}]))",
                    "{{topic}} {{status}}",
                ),
            )
        )
        .with_row(Row("Cleaner"))
        .with_panel(
            graph(
                "Throughput: raw in, clean out, by type",
                "rps",
                query(
                    f"sum by (type) (rate(pinpipe_cleaner_records_in_total[{RATE}]))", "in {{type}}"
                ),
                query(
                    f"sum by (type) (rate(pinpipe_cleaner_records_out_total[{RATE}]))",
                    "out {{type}}",
                ),
                width=8,
            )
        )
        .with_panel(
            graph(
                "DLQ rate by reason",
                "rps",
                query(f"sum by (reason) (rate(pinpipe_cleaner_dlq_total[{RATE}]))", "{{reason}}"),
                width=8,
            )
        )
        .with_panel(
            graph(
                "Raw record → clean record committed, p99",
                "s",
                query(quantile(0.99, "pinpipe_cleaner_record_latency_seconds"), "p99"),
                width=8,
            )
        )
        .with_row(Row("Consumer lag"))
        .with_panel(
            graph(
                "Consumer lag per group (records not yet committed)",
                "short",
                query("sum(pinpipe_cleaner_consumer_lag)", "cleaner"),
                query("sum(pinpipe_s3_sink_consumer_lag)", "s3 sink"),
                query("sum(pinpipe_aggregator_consumer_lag)", "aggregator"),
            )
        )
        .with_panel(
            graph(
                "Consumer lag per topic",
                "short",
                query("sum by (topic) (pinpipe_cleaner_consumer_lag)", "cleaner {{topic}}"),
                query("sum by (topic) (pinpipe_s3_sink_consumer_lag)", "sink {{topic}}"),
                query("sum by (topic) (pinpipe_aggregator_consumer_lag)", "aggregator {{topic}}"),
            )
        )
        .with_row(Row("S3 sink"))
        .with_panel(
            graph(
                "Files committed by zone and type",
                "short",
                query(
                    f"sum by (zone, type) (increase(pinpipe_s3_sink_files_total[{RATE}]))",
                    "{{zone}} {{type}}",
                ),
                width=8,
            )
        )
        .with_panel(
            graph(
                "Parquet bytes written by zone",
                "Bps",
                query(f"sum by (zone) (rate(pinpipe_s3_sink_bytes_total[{RATE}]))", "{{zone}}"),
                width=8,
            )
        )
        .with_panel(
            percentiles(
                "Flush latency (write and commit one file) p50 / p99",
                "pinpipe_s3_sink_flush_seconds",
                width=8,
            )
        )
        .with_panel(
            graph(
                "Lake tables: data files (compaction lag: small files not merged yet)",
                "short",
                query("max by (table) (pinpipe_s3_sink_table_files)", "{{table}}"),
                width=12,
            )
        )
        .with_panel(
            graph(
                "Lake tables: version (commits)",
                "short",
                query("max by (table) (pinpipe_s3_sink_table_version)", "{{table}}"),
                width=12,
            )
        )
        .with_row(Row("Aggregator"))
        .with_panel(
            percentiles(
                "Freshness (ingest → visible in the aggregates) p50 / p99",
                "pinpipe_aggregator_freshness_seconds",
                width=8,
            )
        )
        .with_panel(
            graph(
                "Events: changed a post, or changed nothing",
                "rps",
                query(
                    f"sum by (type) (rate(pinpipe_aggregator_records_total[{RATE}]))",
                    "changed {{type}}",
                ),
                query(
                    f"sum by (type) (rate(pinpipe_aggregator_unchanged_total[{RATE}]))",
                    "unchanged {{type}}",
                ),
                width=8,
            )
        )
        .with_panel(
            graph(
                "Recovery: last duration, recoveries, posts held",
                "short",
                query("max(pinpipe_aggregator_recovery_seconds)", "last recovery (s)"),
                query("sum(pinpipe_aggregator_recoveries_total)", "recoveries"),
                query("sum(pinpipe_aggregator_posts)", "posts"),
                width=8,
            )
        )
    )
