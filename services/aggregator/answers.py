"""The answers to the questions from the aggregates: pure functions over the merged counts
(:mod:`services.aggregator.state`), with the columns, filters and row order of the batch SQL of
the same name (``batch/sql/``), so that a drained stream answers exactly as ``pinpipe query``.
The questions, their columns and which take a window are the catalogue's
(``shared/questions.py``).
NULL groups sort last, as in DuckDB.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from services.aggregator.posts import Key, more_followed
from shared.questions import QUESTIONS

Rows = list[tuple[Any, ...]]
Answer = tuple[list[str], Rows]
# Which time buckets a windowed answer counts (None: all time).
Buckets = range | None

POST_YEARS = range(2018, 2023)
JOIN_YEARS = range(2015, 2021)


def _order(value: Any) -> tuple[bool, Any]:
    return (value is None, value)


def _of(counts: Counter[Key], kind: str) -> Iterable[tuple[tuple[Any, ...], int]]:
    for key, count in counts.items():
        if key[0] == kind:
            yield key[1:], count


def _pairs(counts: Counter[Key], kind: str, buckets: Buckets) -> Counter[tuple[Any, Any]]:
    """(group, category) → posts, all time or within ``buckets`` (the ``recent_`` kind)."""
    pairs: Counter[tuple[Any, Any]] = Counter()
    if buckets is None:
        for (group, category), count in _of(counts, kind):
            pairs[(group, category)] += count
    else:
        for (bucket, group, category), count in _of(counts, f"recent_{kind}"):
            if bucket in buckets:
                pairs[(group, category)] += count
    return pairs


def _most_popular(pairs: Counter[tuple[Any, Any]]) -> Rows:
    top: dict[Any, int] = {}
    for (group, _), count in pairs.items():
        top[group] = max(top.get(group, 0), count)
    rows = [(g, c, n) for (g, c), n in pairs.items() if n and n == top[g]]
    return sorted(rows, key=lambda r: (_order(r[0]), _order(r[1])))


def _all_pairs(pairs: Counter[tuple[Any, Any]]) -> Rows:
    rows = [(g, c, n) for (g, c), n in pairs.items() if n]
    return sorted(rows, key=lambda r: (_order(r[0]), _order(r[1])))


def lower_median(values: Counter[Any]) -> int | None:
    """The lower median of a value → count map, NULLs ignored (``percentile_disc(0.5)``)."""
    known = sorted((v, n) for v, n in values.items() if v is not None and n > 0)
    total = sum(n for _, n in known)
    if not total:
        return None
    wanted, seen = (total + 1) // 2, 0
    for value, count in known:
        seen += count
        if seen >= wanted:
            return int(value)
    raise AssertionError("unreachable")


def _medians(counts: Counter[Key], kind: str, keep: Callable[[tuple[Any, ...]], bool]) -> Rows:
    groups: dict[tuple[Any, ...], Counter[Any]] = defaultdict(Counter)
    for key, count in _of(counts, kind):
        group, value = key[:-1], key[-1]
        if keep(group):
            groups[group][value] += count
    rows = [(*group, lower_median(values)) for group, values in groups.items()]
    return sorted(rows, key=lambda r: tuple(_order(v) for v in r[:-1]))


def _top_followers(counts: Counter[Key]) -> dict[Any, tuple[int, Any]]:
    """country → (most followers, first poster by name with them: Q3's tie-break)."""
    top: dict[Any, tuple[int, Any]] = {}
    for (country, followers, poster), count in _of(counts, "country_follower"):
        if count and more_followed(followers, poster, top.get(country)):
            top[country] = (followers, poster)
    return top


def answer(name: str, counts: Counter[Key], buckets: Buckets = None) -> Answer:
    """The answer to question ``name`` (KeyError if unknown): the catalogue's columns
    (``shared/questions.py``) and the rows."""
    rows = ANSWERS[name](counts, buckets)
    return list(QUESTIONS[name].columns), rows


def _q1(counts: Counter[Key], buckets: Buckets) -> Rows:
    pairs = _pairs(counts, "country_category", buckets)
    return _most_popular(pairs)


def _q2(counts: Counter[Key], buckets: Buckets) -> Rows:
    rows = [
        (year, category, n)
        for (year, category), n in _of(counts, "year_category")
        if n and year in POST_YEARS
    ]
    rows.sort(key=lambda r: (r[0], _order(r[1])))
    return rows


def _q3(counts: Counter[Key], buckets: Buckets) -> Rows:
    top = _top_followers(counts)
    rows = [(country, poster, followers) for country, (followers, poster) in top.items()]
    rows.sort(key=lambda r: _order(r[0]))
    return rows


def _q4(counts: Counter[Key], buckets: Buckets) -> Rows:
    top = _top_followers(counts)
    most = max((followers for followers, _ in top.values()), default=None)
    rows = [(country, most) for country, (followers, _) in top.items() if followers == most]
    rows.sort(key=lambda r: _order(r[0]))
    return rows


def _q5(counts: Counter[Key], buckets: Buckets) -> Rows:
    pairs = _pairs(counts, "age_group_category", buckets)
    return _most_popular(pairs)


def _q6(counts: Counter[Key], buckets: Buckets) -> Rows:
    return _medians(counts, "age_group_follower", lambda group: True)


def _q7(counts: Counter[Key], buckets: Buckets) -> Rows:
    rows = [(year, n) for (year,), n in _of(counts, "users_joined") if n and year in JOIN_YEARS]
    rows.sort()
    return rows


def _q8(counts: Counter[Key], buckets: Buckets) -> Rows:
    return _medians(counts, "join_year_follower", lambda group: group[0] in JOIN_YEARS)


def _q9(counts: Counter[Key], buckets: Buckets) -> Rows:
    return _medians(counts, "age_group_join_year_follower", lambda group: group[1] in JOIN_YEARS)


def _posts_per_country(counts: Counter[Key], buckets: Buckets) -> Rows:
    rows = [(country, n) for (country,), n in _of(counts, "country_posts") if n]
    rows.sort(key=lambda r: (-r[1], _order(r[0])))
    return rows


def _posts_per_country_and_category(counts: Counter[Key], buckets: Buckets) -> Rows:
    pairs = _pairs(counts, "country_category", buckets)
    return _all_pairs(pairs)


def _posts_per_age_group_and_category(counts: Counter[Key], buckets: Buckets) -> Rows:
    pairs = _pairs(counts, "age_group_category", buckets)
    return _all_pairs(pairs)


# The rows of each question of the catalogue.
ANSWERS: dict[str, Callable[[Counter[Key], Buckets], Rows]] = {
    "most-popular-category-per-country": _q1,
    "posts-per-category-2018-2022": _q2,
    "most-followed-user-per-country": _q3,
    "country-with-most-followed-user": _q4,
    "most-popular-category-per-age-group": _q5,
    "median-follower-count-per-age-group": _q6,
    "users-joined-per-year-2015-2020": _q7,
    "median-follower-count-by-join-year": _q8,
    "median-follower-count-by-age-group-and-join-year": _q9,
    "posts-per-country": _posts_per_country,
    "posts-per-country-and-category": _posts_per_country_and_category,
    "posts-per-age-group-and-category": _posts_per_age_group_and_category,
}
