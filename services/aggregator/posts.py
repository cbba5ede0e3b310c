"""What the aggregator remembers of a post, and what a post adds to the aggregates: pure
functions, no Faust.

A post is its latest pin, geo and user record (the standard profile: the highest offset per type
and ``ind``; clean topics are keyed by ``ind``, so every record of one post sits in one
partition, in order). Only the fields the questions read are kept, with the offset of the
record they came from and the processing time it was applied at (for the rolling windows):
:class:`Post`, of :class:`Pin`, :class:`Geo` and :class:`User` parts. The table stores its wire
form (:func:`to_wire`, :func:`from_wire`), whose short keys older changelogs were written in.

:func:`apply` is idempotent: a record at or below the offset already applied for its type
changes nothing (it is a replay after a restart), which makes the aggregates exact under
at-least-once delivery (see ``services/aggregator/tables.py``); nor does a repeat of what the
post already holds (the emulator re-posts rows), which then costs no table write. A post's
window time is when it last changed.

:func:`contributions` lists what one post counts for. The aggregates are the sum of the
contributions of every post, so a changed post retracts its old contributions and adds its new
ones; nothing else is ever counted. :func:`more_followed` is how Q3 breaks a tie between the
posters of a country.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from shared.age_groups import age_group

# One contribution: (kind, *group values); see contributions().
Key = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Pin:
    """What a post keeps of its latest pin record."""

    offset: int  # of the record in its clean topic partition
    applied_at: float  # processing time, epoch seconds
    category: str | None
    follower_count: int | None
    poster_name: str | None


@dataclass(frozen=True, slots=True)
class Geo:
    """What a post keeps of its latest geo record."""

    offset: int
    applied_at: float
    country: str | None
    year: int | None  # of the post's timestamp


@dataclass(frozen=True, slots=True)
class User:
    """What a post keeps of its latest user record."""

    offset: int
    applied_at: float
    age_group: str | None
    join_year: int | None


Part = Pin | Geo | User
PARTS: dict[str, type[Pin] | type[Geo] | type[User]] = {"pin": Pin, "geo": Geo, "user": User}
# each part's fields after its offset and applied_at: those of fields_of()
_FIELDS = {t: tuple(f.name for f in dataclasses.fields(c))[2:] for t, c in PARTS.items()}


@dataclass(frozen=True, slots=True)
class Post:
    """A post: the partition of its records and its latest record of each type."""

    partition: int
    pin: Pin | None = None
    geo: Geo | None = None
    user: User | None = None


# The wire form of a post, as the ``posts`` table and its changelog topic hold it (JSON):
# {"p": partition, "pin": {...}, "geo": {...}, "user": {...}}, a record type absent until
# the post has one, each record part {"o": offset, "t": applied at, <its fields>...}. Changelogs
# written by earlier versions are restored from it: keep these keys as they are.
WirePost = dict[str, Any]


def to_wire(post: Post) -> WirePost:
    """The post as the table stores it (see :data:`WirePost`)."""
    wire: WirePost = {"p": post.partition}
    for record_type in PARTS:
        part: Part | None = getattr(post, record_type)
        if part is not None:
            fields = {name: getattr(part, name) for name in _FIELDS[record_type]}
            wire[record_type] = {"o": part.offset, "t": part.applied_at, **fields}
    return wire


def from_wire(wire: WirePost) -> Post:
    """The post a table value holds (see :data:`WirePost`)."""
    parts: dict[str, Any] = {}  # record type → its part
    for record_type, part_class in PARTS.items():
        part = wire.get(record_type)
        if part is not None:
            fields = {name: part[name] for name in _FIELDS[record_type]}
            parts[record_type] = part_class(part["o"], part["t"], **fields)
    return Post(wire["p"], **parts)


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
    previous: Part | None = getattr(post, record_type) if post is not None else None
    if previous is not None:
        if offset <= previous.offset:
            return None
        if all(getattr(previous, name) == value for name, value in fields.items()):
            return None
    part = PARTS[record_type](offset, applied_at, **fields)
    if post is None:
        post = Post(partition)
    # built directly, not by dataclasses.replace (which is slow for once per record)
    if isinstance(part, Pin):
        return Post(post.partition, part, post.geo, post.user)
    if isinstance(part, Geo):
        return Post(post.partition, post.pin, part, post.user)
    return Post(post.partition, post.pin, post.geo, part)


def replayed(post: Post | None, record_type: str, offset: int) -> bool:
    """Whether the post holds its ``record_type`` from ``offset`` or a later record: a record
    read again (after a restart or a rebalance), not a new one."""
    part: Part | None = getattr(post, record_type) if post is not None else None
    return part is not None and offset <= part.offset


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
    pin, geo, user = post.pin, post.geo, post.user
    out: list[Key] = []
    if geo is not None:
        out.append(("country_posts", geo.country))
    if user is not None:
        out.append(("users_joined", user.join_year))
    if pin is not None and geo is not None:
        country, category = geo.country, pin.category
        out.append(("country_category", country, category))
        out.append(("year_category", geo.year, category))
        if pin.follower_count is not None:
            out.append(("country_follower", country, pin.follower_count, pin.poster_name))
        bucket = int(max(pin.applied_at, geo.applied_at) // bucket_seconds)
        out.append(("recent_country_category", bucket, country, category))
    if pin is not None and user is not None:
        group, followers = user.age_group, pin.follower_count
        out.append(("join_year_follower", user.join_year, followers))
        if group is not None:
            out.append(("age_group_category", group, pin.category))
            out.append(("age_group_follower", group, followers))
            out.append(("age_group_join_year_follower", group, user.join_year, followers))
            bucket = int(max(pin.applied_at, user.applied_at) // bucket_seconds)
            out.append(("recent_age_group_category", bucket, group, pin.category))
    return out


def more_followed(followers: int, poster: Any, best: tuple[int, Any] | None) -> bool:
    """Q3's tie-break between the posters of a country (``country_follower``): whether
    (followers, poster) beats ``best``: more followers, or at equal followers the first poster
    by name (a known name before none), as Q3's SQL picks."""
    if best is None or followers != best[0]:
        return best is None or followers > best[0]
    return poster is not None and (best[1] is None or poster < best[1])
