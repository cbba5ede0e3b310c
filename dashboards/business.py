"""The "Business" dashboard: the live answers, from the aggregator's ``live_`` gauges
(services/aggregator/business_metrics.py). Every replica exports the whole answer, so panels
take ``max by`` over replicas. Countries and categories past the aggregator's top N are summed
under ``(other)``: sums over a label stay exact, and the top-10 panel leaves ``(other)`` out."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from dashboards.panels import bars, dashboard, graph, query, rows_table

UID = "pinpipe-business"
LIVE = "pinpipe_aggregator_live"
# one series per group, whichever replica exported it
POSTS = f'max by (country, category) ({LIVE}_posts{{window="all"}})'
OTHER = "(other)"  # services/aggregator/business_metrics.py's OTHER_LABEL
NAMED_COUNTRIES = f'max by (country, category) ({LIVE}_posts{{window="all", country!="{OTHER}"}})'
POSTS_RECENT = f'max by (country, category) ({LIVE}_posts{{window="15m"}})'
AGE_GROUPS = f'max by (age_group, category) ({LIVE}_posts_by_age_group{{window="all"}})'


def build() -> Dashboard:
    return (
        dashboard("pinpipe / Business", UID, refresh="30s", since="6h")
        .with_row(Row("Countries and categories"))
        .with_panel(
            graph(
                "Posts per country, top 10 (all time)",
                "short",
                query(
                    f"topk(10, sum by (country) ({NAMED_COUNTRIES}))",
                    "{{country}}",
                ),
            )
        )
        .with_panel(
            graph(
                "Trending: posts per category, last 15 minutes",
                "short",
                query(
                    f"sum by (category) ({POSTS_RECENT})",
                    "{{category}}",
                ),
            )
        )
        .with_panel(
            rows_table(
                "Posts per country and category (all time)",
                query(POSTS, instant=True),
            )
        )
        .with_row(Row("Age groups"))
        .with_panel(
            bars(
                "Posts per age group (all time)",
                "short",
                query(
                    f"sum by (age_group) ({AGE_GROUPS})",
                    "{{age_group}}",
                    instant=True,
                ),
                width=8,
            )
        )
        .with_panel(
            bars(
                "Median follower count per age group (Q6)",
                "short",
                query(
                    f"max by (age_group) ({LIVE}_median_follower_count)",
                    "{{age_group}}",
                    instant=True,
                ),
                width=8,
            )
        )
        .with_panel(
            bars(
                "Median follower count by joining year (Q8)",
                "short",
                query(
                    f"max by (post_year) ({LIVE}_median_follower_count_by_join_year)",
                    "{{post_year}}",
                    instant=True,
                ),
                width=8,
            )
        )
        .with_panel(
            rows_table(
                "Posts per age group and category (all time)",
                query(AGE_GROUPS, instant=True),
            )
        )
    )
