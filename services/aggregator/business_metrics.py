"""The live answers as Prometheus gauges, for the "Business" dashboard.

On each scrape of ``/metrics`` the replica gathers every partition's aggregates (as
``GET /aggregates/...`` does) and exports a few answers: posts per country and category and per
age group and category (all time and over the last 15 minutes), and the lower median follower
count per age group and by joining year. Every replica exports the whole answer, so a dashboard
takes ``max by (<labels>)`` over replicas, never ``sum``. While the answer cannot be gathered
(a recovery, a rebalance) the gauges are absent rather than stale.

Labels that come from the data are bounded, whatever the data holds: the top N countries and
the top M categories by all-time posts (``PINPIPE_AGGREGATOR_METRIC_TOP_COUNTRIES`` and
``..._TOP_CATEGORIES``) keep their own series; the posts of all others are summed under
``(other)``, so sums over a label stay exact. Age groups and joining years are bounded by the
questions themselves.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from services.aggregator.answers import answer
from services.aggregator.posts import Key

PREFIX = "pinpipe_aggregator_live_"
RECENT_MINUTES = 15
NULL_LABEL = "(null)"  # a NULL group, which Prometheus could not tell from a missing label
OTHER_LABEL = "(other)"  # the groups past the top N, summed


@dataclass(frozen=True)
class LabelLimits:
    """How many countries and categories keep a series of their own."""

    countries: int = 30
    categories: int = 20


def _label(value: Any) -> str:
    return NULL_LABEL if value is None else str(value)


class LiveAnswers(Collector):
    """Gauges of the last gathered answers (none until :meth:`update` is given some)."""

    def __init__(self) -> None:
        self._families: list[GaugeMetricFamily] = []

    def update(
        self, counts: Counter[Key] | None, bucket_seconds: int, limits: LabelLimits = LabelLimits()
    ) -> None:
        """Rebuild the gauges from merged counts; ``None`` clears them."""
        self._families = (
            [] if counts is None else families(counts, bucket_seconds, time.time(), limits)
        )

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from self._families

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())  # dynamic: nothing to check at registration


def _top(totals: Counter[str], n: int) -> set[str]:
    """The n labels of the highest totals (ties by label, so every replica picks the same)."""
    return {label for label, _ in sorted(totals.items(), key=lambda t: (-t[1], t[0]))[:n]}


def _bounded(
    rows: Iterable[tuple[Any, ...]], groups: set[str] | None, categories: set[str]
) -> Counter[tuple[str, str]]:
    """(group, category, count) rows with the labels past the top summed under OTHER_LABEL
    (``groups`` None: the groups are bounded already)."""
    bounded: Counter[tuple[str, str]] = Counter()
    for group, category, count in rows:
        group_label, category_label = _label(group), _label(category)
        if groups is not None and group_label not in groups:
            group_label = OTHER_LABEL
        if category_label not in categories:
            category_label = OTHER_LABEL
        bounded[group_label, category_label] += count
    return bounded


def families(
    counts: Counter[Key], bucket_seconds: int, now: float, limits: LabelLimits = LabelLimits()
) -> list[GaugeMetricFamily]:
    """The gauges of the answers over ``counts`` (the merged aggregates of every partition)."""
    current = int(now // bucket_seconds)
    recent = range(current - math.ceil(RECENT_MINUTES * 60 / bucket_seconds) + 1, current + 1)
    posts = GaugeMetricFamily(
        PREFIX + "posts",
        "Posts per country and category (window: all, or the last 15m); max over replicas",
        labels=["country", "category", "window"],
    )
    by_age = GaugeMetricFamily(
        PREFIX + "posts_by_age_group",
        "Posts per age group and category (window: all, or the last 15m); max over replicas",
        labels=["age_group", "category", "window"],
    )
    all_time = answer("posts-per-country-and-category", counts)[1]
    country_totals: Counter[str] = Counter()
    category_totals: Counter[str] = Counter()
    for country, category, count in all_time:
        country_totals[_label(country)] += count
        category_totals[_label(category)] += count
    countries = _top(country_totals, limits.countries)
    categories = _top(category_totals, limits.categories)
    for window, buckets in (("all", None), (f"{RECENT_MINUTES}m", recent)):
        for family, question, groups in (
            (posts, "posts-per-country-and-category", countries),
            (by_age, "posts-per-age-group-and-category", None),
        ):
            reuse = buckets is None and groups is countries
            rows = all_time if reuse else answer(question, counts, buckets)[1]
            bounded = _bounded(rows, groups, categories)
            for (group, category), count in bounded.items():
                family.add_metric([group, category, window], count)
    medians = _medians(
        "median_follower_count",
        "Lower median follower count per age group (Q6); max over replicas",
        "age_group",
        answer("median-follower-count-per-age-group", counts)[1],
    )
    by_year = _medians(
        "median_follower_count_by_join_year",
        "Lower median follower count by joining year, 2015-2020 (Q8); max over replicas",
        "post_year",
        answer("median-follower-count-by-join-year", counts)[1],
    )
    return [posts, by_age, medians, by_year]


def _medians(name: str, doc: str, label: str, rows: list[tuple[Any, ...]]) -> GaugeMetricFamily:
    """A gauge of (group, median) rows, one sample per group."""
    family = GaugeMetricFamily(PREFIX + name, doc, labels=[label])
    for group, median in rows:
        family.add_metric([_label(group)], median)
    return family
