"""The aggregator's logic without Faust: posts updated record by record, aggregates derived
from them, answers equal to the batch queries over the same records (DuckDB over a lake), and
the properties its exactness rests on (replays change nothing, a rebuild equals the
incremental counts, partials of disjoint partitions add up)."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import duckdb
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from services.aggregator.answers import ANSWERS, answer, lower_median
from services.aggregator.business_metrics import NULL_LABEL, OTHER_LABEL, LabelLimits, LiveAnswers
from services.aggregator.business_metrics import families as live_families
from services.aggregator.posts import (
    Geo,
    Pin,
    Post,
    apply,
    contributions,
    fields_of,
    from_wire,
    more_followed,
    replayed,
    to_wire,
)
from services.aggregator.state import Aggregates, from_json, merge, to_json
from shared.questions import QUESTIONS, WINDOWED
from tests.posts_stream import Stream, batch_answers, posts_stream

PARTITIONS = 3
BUCKET = 60


class Replica:
    """What the Faust agent does per record, over a dict instead of the table."""

    def __init__(self) -> None:
        self.posts: dict[int, Post] = {}
        self.aggregates = Aggregates(BUCKET)
        self.replayed = 0

    def feed(self, stream: Stream, at: float = 1_000_000.0) -> None:
        offsets: Counter[tuple[str, int]] = Counter()
        for record_type, record in stream:
            ind = record["ind"]
            partition = ind % PARTITIONS
            offset = offsets[(record_type, partition)]
            offsets[(record_type, partition)] += 1
            self.record(partition, record_type, record, offset, at)

    def record(
        self, partition: int, record_type: str, record: dict[str, Any], offset: int, at: float
    ) -> None:
        old = self.posts.get(record["ind"])
        new = apply(old, partition, record_type, fields_of(record_type, record), offset, at)
        if new is None:
            self.replayed += 1
            return
        self.posts[record["ind"]] = new
        self.aggregates.replace(partition, old, new)


@pytest.fixture(scope="module")
def stream() -> Stream:
    return posts_stream()


@pytest.fixture(scope="module")
def expected(stream: Stream, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return batch_answers(stream, tmp_path_factory.mktemp("batch"))


def test_the_aggregator_answers_the_questions_of_pinpipe_query() -> None:
    assert set(ANSWERS) == set(QUESTIONS)
    assert WINDOWED <= set(ANSWERS)


@pytest.mark.parametrize("name", list(QUESTIONS))
def test_live_answers_equal_the_batch_queries(
    name: str, stream: Stream, expected: dict[str, Any]
) -> None:
    replica = Replica()
    replica.feed(stream)
    columns, rows = answer(name, merge([replica.aggregates.partial()]))
    assert (columns, rows) == expected[name]
    assert rows, f"{name}: no rows (the test data must exercise it)"


def test_the_stream_changes_posts_and_repeats_them(stream: Stream) -> None:
    versions: dict[tuple[str, int], set[bytes]] = {}
    seen: Counter[tuple[str, int]] = Counter()
    for record_type, record in stream:
        key = (record_type, record["ind"])
        seen[key] += 1
        versions.setdefault(key, set()).add(repr(sorted(record.items())).encode())
    assert sum(1 for n in seen.values() if n > 1) > 500
    assert sum(1 for v in versions.values() if len(v) > 1) > 300


def test_a_replayed_stream_changes_nothing(stream: Stream) -> None:
    replica = Replica()
    replica.feed(stream)
    before = replica.aggregates.partial()
    replica.replayed = 0
    replica.feed(stream)  # the same offsets again: after a restart
    assert replica.replayed == len(stream)
    assert replica.aggregates.partial() == before


def test_a_rebuild_from_the_posts_equals_the_incremental_counts(stream: Stream) -> None:
    replica = Replica()
    replica.feed(stream)
    rebuilt = Aggregates(BUCKET)
    rebuilt.rebuild(replica.posts.values(), {})
    assert rebuilt.counts == {p: c for p, c in replica.aggregates.counts.items() if c}


def test_partials_of_disjoint_partitions_add_up_to_the_whole(stream: Stream) -> None:
    whole = Replica()
    whole.feed(stream)
    halves = [Aggregates(BUCKET), Aggregates(BUCKET)]
    by_half: list[list[Post]] = [[], []]
    for post in whole.posts.values():
        by_half[post.partition % 2].append(post)
    for half, posts in zip(halves, by_half, strict=True):
        half.rebuild(posts, {})
    # through JSON, as replicas exchange them
    merged = merge(from_json(to_json(h.partial())) for h in halves)
    for name in QUESTIONS:
        assert answer(name, merged) == answer(name, whole.aggregates.partial()), name


def test_windows_count_posts_by_when_they_last_changed() -> None:
    replica = Replica()
    pin = {"ind": 1, "category": "art", "follower_count": 5, "poster_name": "a"}
    geo = {"ind": 1, "country": "Japan", "timestamp": "2020-01-01T00:00:00"}
    replica.record(1, "pin", pin, 0, at=10 * BUCKET)
    replica.record(1, "geo", geo, 0, at=12 * BUCKET + 5)  # the post last changed in bucket 12
    counts = replica.aggregates.partial()
    name = "posts-per-country-and-category"
    assert answer(name, counts, range(12, 13))[1] == [("Japan", "art", 1)]
    assert answer(name, counts, range(13, 20))[1] == []  # expired
    assert answer(name, counts, None)[1] == [("Japan", "art", 1)]  # all time
    replica.record(1, "geo", {**geo, "country": "Aruba"}, 1, at=15 * BUCKET)
    counts = replica.aggregates.partial()
    assert answer(name, counts, range(12, 13))[1] == []  # moved, not counted twice
    assert answer(name, counts, range(15, 16))[1] == [("Aruba", "art", 1)]


@pytest.mark.parametrize(
    "values", [[1], [1, 2], [3, 1, 2], [5, 5, 1, 9], [None, 4, None], [None], [2, 2, 2, 7, 7, 7]]
)
def test_lower_median_is_percentile_disc(values: list[int | None]) -> None:
    listed = ", ".join("NULL" if v is None else str(v) for v in values)
    (expected,) = duckdb.connect().execute(
        "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY v)"
        f" FROM (SELECT unnest([{listed}]::BIGINT[]) AS v)"
    ).fetchone() or (None,)
    assert lower_median(Counter(values)) == expected


def test_a_post_counts_only_what_it_has() -> None:
    geo_only = Post(0, geo=Geo(offset=0, applied_at=0.0, country="Japan", year=2020))
    assert contributions(geo_only, BUCKET) == [("country_posts", "Japan")]
    assert contributions(None, BUCKET) == []


def test_a_post_reads_the_wire_form_older_changelogs_hold() -> None:
    """The table and its changelog hold a post as JSON with short keys ("p": partition; per
    record type "o": offset, "t": applied at): a value written before posts were typed is read
    back, and written again the same."""
    written = {
        "p": 2,
        "geo": {"o": 7, "t": 60.5, "country": "Aruba", "year": 2019},
        "pin": {"o": 9, "t": 61.0, "category": "art", "follower_count": 5, "poster_name": "a"},
    }
    post = from_wire(written)
    assert post == Post(
        2,
        pin=Pin(offset=9, applied_at=61.0, category="art", follower_count=5, poster_name="a"),
        geo=Geo(offset=7, applied_at=60.5, country="Aruba", year=2019),
    )
    assert to_wire(post) == written
    assert contributions(post, BUCKET)[0] == ("country_posts", "Aruba")


def test_q3_breaks_a_tie_by_the_first_poster_name() -> None:
    assert more_followed(5, "b", None)
    assert more_followed(6, "z", (5, "a"))
    assert not more_followed(4, "a", (5, "b"))
    assert more_followed(5, "a", (5, "b")) and not more_followed(5, "b", (5, "a"))
    assert more_followed(5, "a", (5, None)) and not more_followed(5, None, (5, "a"))


def test_the_live_answer_gauges_carry_the_answers(stream: Stream, expected: dict[str, Any]) -> None:
    """What /metrics exports for the Business dashboard, parsed back from the exposition text,
    is what ``pinpipe query`` (the batch SQL in DuckDB over a lake of the same records) answers
    to the question of the same name; the 15m window leaves out older posts."""
    replica = Replica()
    replica.feed(stream, at=1_000_000.0)
    live = LiveAnswers()
    registry = CollectorRegistry()
    registry.register(live)
    assert generate_latest(registry) == b""  # nothing before the first gathered answer
    # long after the stream; limits that bound nothing here (see the test after this one)
    live.update(merge([replica.aggregates.partial()]), BUCKET, LabelLimits(10_000, 10_000))
    samples: dict[str, dict[frozenset[tuple[str, str]], float]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[frozenset(sample.labels.items())] = sample.value

    def batch(question: str, *labels: str, **fixed: str) -> dict[frozenset[tuple[str, str]], float]:
        """The batch answer's rows as gauge samples: the group columns as ``labels``, the last
        column as the value."""
        columns, rows = expected[question]
        assert len(columns) == len(labels) + 1, (question, columns)
        assert rows, f"{question}: no rows (the test data must exercise it)"
        return {
            frozenset(
                {**dict(zip(labels, (_text(v) for v in row[:-1]), strict=True)), **fixed}.items()
            ): float(row[-1])
            for row in rows
        }

    # the 15m window of every post is long gone: only window="all" samples
    assert samples["pinpipe_aggregator_live_posts"] == batch(
        "posts-per-country-and-category", "country", "category", window="all"
    )
    assert samples["pinpipe_aggregator_live_posts_by_age_group"] == batch(
        "posts-per-age-group-and-category", "age_group", "category", window="all"
    )
    assert samples["pinpipe_aggregator_live_median_follower_count"] == batch(
        "median-follower-count-per-age-group", "age_group"
    )
    assert samples["pinpipe_aggregator_live_median_follower_count_by_join_year"] == batch(
        "median-follower-count-by-join-year", "post_year"
    )
    live.update(None, BUCKET)
    assert generate_latest(registry) == b""  # absent, not stale, while answers can't be had


def test_the_live_answer_gauges_bound_countries_and_categories(
    stream: Stream, expected: dict[str, Any]
) -> None:
    """With more countries and categories than the limits, the top ones by posts keep their
    own series with the batch answer's numbers, the others are summed under (other): the
    totals stay the batch totals."""
    replica = Replica()
    replica.feed(stream, at=1_000_000.0)
    limits = LabelLimits(countries=5, categories=3)
    families = {
        f.name: f
        for f in live_families(merge([replica.aggregates.partial()]), BUCKET, 1_000_000.0, limits)
    }
    rows = expected["posts-per-country-and-category"][1]
    countries: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    for country, category, count in rows:
        countries[_text(country)] += count
        categories[_text(category)] += count
    assert len(countries) > limits.countries and len(categories) > limits.categories

    def top(totals: Counter[str], n: int) -> set[str]:
        return {k for k, _ in sorted(totals.items(), key=lambda t: (-t[1], t[0]))[:n]}

    shown: Counter[tuple[str, str]] = Counter()
    for sample in families["pinpipe_aggregator_live_posts"].samples:
        if sample.labels["window"] == "all":
            shown[sample.labels["country"], sample.labels["category"]] += int(sample.value)
    top_countries = top(countries, limits.countries)
    top_categories = top(categories, limits.categories)
    assert {c for c, _ in shown} == top_countries | {OTHER_LABEL}
    assert {c for _, c in shown} == top_categories | {OTHER_LABEL}
    assert sum(shown.values()) == sum(countries.values())
    for country in top_countries:
        assert sum(n for (c, _), n in shown.items() if c == country) == countries[country]
    for country, category, count in rows:
        if _text(country) in top_countries and _text(category) in top_categories:
            assert shown[_text(country), _text(category)] == count
    by_age = families["pinpipe_aggregator_live_posts_by_age_group"].samples
    assert {s.labels["category"] for s in by_age} <= top_categories | {OTHER_LABEL}


def test_the_live_answer_gauges_have_a_recent_window() -> None:
    replica = Replica()
    pin = {"ind": 1, "category": "art", "follower_count": 5, "poster_name": "a"}
    replica.record(1, "pin", pin, 0, at=time.time())
    replica.record(
        1, "geo", {"ind": 1, "country": "Japan", "timestamp": "2020-01-01"}, 0, time.time()
    )
    families = {f.name: f for f in live_families(replica.aggregates.partial(), BUCKET, time.time())}
    windows = {
        s.labels["window"]: s.value for s in families["pinpipe_aggregator_live_posts"].samples
    }
    assert windows == {"all": 1, "15m": 1}
    later = time.time() + 16 * 60
    families = {f.name: f for f in live_families(replica.aggregates.partial(), BUCKET, later)}
    windows = {
        s.labels["window"]: s.value for s in families["pinpipe_aggregator_live_posts"].samples
    }
    assert windows == {"all": 1}


def _text(value: Any) -> str:
    return NULL_LABEL if value is None else str(value)


def test_a_record_read_again_is_a_replay_and_a_repeat_is_not() -> None:
    """Freshness counts repeats (a record the post holds already, at a new offset) but not
    records read again after a restart (at or below the offset the post holds)."""
    fields = fields_of("geo", {"country": "Albania", "timestamp": "2020-01-01T00:00:00"})
    post = apply(None, 0, "geo", fields, 10, 1.0)
    assert post is not None
    assert replayed(post, "geo", 10) and replayed(post, "geo", 3)
    assert not replayed(post, "geo", 11), "a later record is new, a repeat or not"
    assert apply(post, 0, "geo", fields, 11, 2.0) is None, "a repeat changes nothing"
    assert not replayed(post, "pin", 1) and not replayed(None, "geo", 1)
