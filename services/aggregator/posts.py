"""What the aggregator remembers of a post, and what a post adds to the aggregates: pure
functions, no Faust.

A post is its latest pin, geo and user record (default semantics: the highest offset per type
and ``ind``; clean topics are keyed by ``ind``, so every record of one post sits in one
partition, in order). Only the fields the questions read are kept, with the offset of the
record they came from and the processing time it was applied at (for the rolling windows).

:func:`apply` is idempotent: a record at or below the offset already applied for its type
changes nothing (it is a replay after a restart), which makes the aggregates exact under
at-least-once delivery (see ``services/aggregator/tables.py``); nor does a repeat of what the
post already holds (the emulator re-posts rows), which then costs no table write. A post's
window time is when it last changed.

:func:`contributions` lists what one post counts for. The aggregates are the sum of the
contributions of every post, so a changed post retracts its old contributions and adds its new
ones; nothing else is ever counted.
"""

from __future__ import annotations

from typing import Any

# A post as stored in the ``posts`` table (JSON): {"p": partition, "pin": {...}, "geo": {...},
# "user": {...}}, each record part {"o": offset, "t": applied at (epoch seconds), fields...}.
Post = dict[str, Any]
# One contribution: (kind, *group values); see contributions().
Key = tuple[Any, ...]


def age_group(age: int | None) -> str | None:
    """The age groups of the questions (as batch/sql/staging_common.sql)."""
    if age is None:
        return None
    if 18 <= age <= 24:
        return "18-24"
    if 25 <= age <= 35:
        return "25-35"
    if 36 <= age <= 50:
        return "36-50"
    if age > 50:
        return "50+"
    return None


def _year(timestamp: str | None) -> int | None:
    # clean timestamps are ISO 8601, naive UTC: "2020-01-01T10:00:00"
    return int(timestamp[:4]) if timestamp else None


def fields_of(record_type: str, record: dict[str, Any]) -> dict[str, Any]:
    """The fields of a clean record that the questions read."""
    if record_type == "pin":
        return {
            "category": record.get("category"),
            "follower_count": record.get("follower_count"),
            "poster_name": record.get("poster_name"),
        }
    if record_type == "geo":
        return {"country": record.get("country"), "year": _year(record.get("timestamp"))}
    if record_type == "user":
        return {
            "age_group": age_group(record.get("age")),
            "join_year": _year(record.get("date_joined")),
        }
    raise ValueError(f"unknown record type {record_type!r}")


def apply(
    post: Post | None,
    partition: int,
    record_type: str,
    fields: dict[str, Any],
    offset: int,
    applied_at: float,
) -> Post | None:
    """The post after a record, or None when the record changes nothing: a replay (its
    offset was applied already) or a repeat of the fields the post holds (whose offset need not
    be kept: replaying the records after the kept one gives the same post again)."""
    previous = post.get(record_type) if post is not None else None
    if previous is not None:
        if offset <= previous["o"]:
            return None
        if all(previous.get(name) == value for name, value in fields.items()):
            return None
    updated: Post = dict(post) if post is not None else {"p": partition}
    updated[record_type] = {"o": offset, "t": applied_at, **fields}
    return updated


def contributions(post: Post | None, bucket_seconds: int) -> list[Key]:
    """What a post counts for. Kinds and their groups:

    - ``country_posts`` (country): posts per country (a geo)
    - ``users_joined`` (join year): users per joining year (a user)
    - ``country_category`` (country, category), ``year_category`` (post year, category) and
      ``country_follower`` (country, follower count, poster; known counts only): a pin and
      its geo
    - ``age_group_category`` (age group, category), ``age_group_follower`` (age group,
      follower count), ``join_year_follower`` (join year, follower count) and
      ``age_group_join_year_follower`` (age group, join year, follower count): a pin and its
      user (age groups known; a unknown follower count still makes its group exist)
    - ``recent_country_category`` and ``recent_age_group_category`` (bucket, …): the same
      pairs by the time bucket in which the post last changed (processing time)
    """
    if post is None:
        return []
    pin, geo, user = post.get("pin"), post.get("geo"), post.get("user")
    out: list[Key] = []
    if geo is not None:
        out.append(("country_posts", geo["country"]))
    if user is not None:
        out.append(("users_joined", user["join_year"]))
    if pin is not None and geo is not None:
        country, category = geo["country"], pin["category"]
        out.append(("country_category", country, category))
        out.append(("year_category", geo["year"], category))
        if pin["follower_count"] is not None:
            out.append(("country_follower", country, pin["follower_count"], pin["poster_name"]))
        bucket = int(max(pin["t"], geo["t"]) // bucket_seconds)
        out.append(("recent_country_category", bucket, country, category))
    if pin is not None and user is not None:
        group, followers = user["age_group"], pin["follower_count"]
        out.append(("join_year_follower", user["join_year"], followers))
        if group is not None:
            out.append(("age_group_category", group, pin["category"]))
            out.append(("age_group_follower", group, followers))
            out.append(("age_group_join_year_follower", group, user["join_year"], followers))
            bucket = int(max(pin["t"], user["t"]) // bucket_seconds)
            out.append(("recent_age_group_category", bucket, group, pin["category"]))
    return out
