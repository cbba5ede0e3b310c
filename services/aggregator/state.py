"""The aggregates one aggregator holds: the sum of the contributions of the posts in its active
partitions, kept per partition so that a partition handed to another replica leaves with its
counts. Derived from the ``posts`` table (rebuilt from it after every recovery), never stored.

A *partial* is what one replica tells the others (``GET /internal/aggregates``): its counts
summed over its partitions, with ``country_follower`` cut to the top poster of each country.
Partials of replicas that own different partitions add up to the whole answer (:func:`merge`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from services.aggregator.posts import Key, Post, contributions, more_followed


class Aggregates:
    """Counts per partition; updated per record, rebuilt per recovery."""

    def __init__(self, bucket_seconds: int) -> None:
        self.bucket_seconds = bucket_seconds
        self.counts: dict[int, Counter[Key]] = {}
        self.offsets: dict[tuple[str, int], int] = {}  # (topic, partition) → last offset read

    def replace(self, partition: int, old: Post | None, new: Post) -> None:
        """Retract what ``old`` counted for and add what ``new`` counts for."""
        counts = self.counts.get(partition)
        if counts is None:  # not setdefault: that would make a Counter per record
            counts = self.counts[partition] = Counter()
        before = contributions(old, self.bucket_seconds)
        after = contributions(new, self.bucket_seconds)
        if before == after:
            return
        for key in before:
            left = counts[key] - 1
            if left:
                counts[key] = left
            else:
                del counts[key]
        for key in after:
            counts[key] = counts.get(key, 0) + 1  # not += 1: Counter's __missing__ is a call

    def rebuild(self, posts: Iterable[Post], offsets: dict[tuple[str, int], int]) -> None:
        """Counts from scratch, from every post of the active partitions."""
        self.counts = {}
        for post in posts:
            counts = self.counts.setdefault(post.partition, Counter())
            counts.update(contributions(post, self.bucket_seconds))
        self.offsets = dict(offsets)

    def partial(self) -> Counter[Key]:
        """Counts summed over this replica's partitions, ``country_follower`` cut to each
        country's top follower count and first poster at it."""
        summed: Counter[Key] = Counter()
        top: dict[Any, tuple[int, Any]] = {}
        for counts in self.counts.values():
            for key, count in counts.items():
                if key[0] == "country_follower":
                    _, country, followers, poster = key
                    if more_followed(followers, poster, top.get(country)):
                        top[country] = (followers, poster)
                else:
                    summed[key] += count
        for country, (followers, poster) in top.items():
            summed[("country_follower", country, followers, poster)] = 1
        return summed

    def size(self) -> int:
        """Aggregate keys held (a gauge)."""
        return sum(len(counts) for counts in self.counts.values())


def to_json(partial: Counter[Key]) -> list[list[Any]]:
    return [[*key, count] for key, count in partial.items()]


def from_json(rows: list[list[Any]]) -> Counter[Key]:
    return Counter({tuple(row[:-1]): row[-1] for row in rows})


def merge(partials: Iterable[Counter[Key]]) -> Counter[Key]:
    """The whole from the partials of replicas owning disjoint partitions."""
    merged: Counter[Key] = Counter()
    for partial in partials:
        merged.update(partial)
    return merged
