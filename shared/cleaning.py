"""The cleaning rules of DESIGN.md as pure functions, one per record type.

``clean(record_type, raw)`` takes a raw record (a dict as decoded from JSON) and returns the
clean record as a dict in the fixed column order (:data:`shared.records.CLEAN_COLUMNS`), or
raises :class:`BadRecord` with a low-cardinality reason. It raises nothing else, whatever the
input: the cleaner routes a ``BadRecord`` to the DLQ.

Profile ``standard`` (the default): ``12k`` → 12000, ``2M`` → 2000000, every placeholder nulled,
whitespace trimmed.

Profile ``legacy``: the reference project's exact rules, so its published tables can be
reproduced: ``follower_count`` keeps its digits only (``124k`` → 124, ``2M`` → 2: the unit
bug), the six placeholders are nulled when they match exactly (the plain
``No description available`` is kept), text is not trimmed, ``Local save in `` is removed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from shared.models import RAW_MODELS
from shared.profiles import PROFILES, Profile
from shared.records import (
    CLEAN_COLUMNS,
    IMAGE_SRC_ERROR,
    NO_DESCRIPTION,
    NO_DESCRIPTION_STORY,
    NO_TAGS,
    NO_TITLE,
    RAW_KEYS,
    USER_INFO_ERROR,
)
from shared.topics import RECORD_TYPES, RecordType

# Placeholder values the source uses for "no data", by column.
PLACEHOLDERS: dict[str, frozenset[str]] = {
    "title": frozenset({NO_TITLE}),
    "description": frozenset({NO_DESCRIPTION_STORY, NO_DESCRIPTION}),
    "poster_name": frozenset({USER_INFO_ERROR}),
    "follower_count": frozenset({USER_INFO_ERROR}),
    "tag_list": frozenset({NO_TAGS}),
    "image_src": frozenset({IMAGE_SRC_ERROR}),
}
SAVE_LOCATION_PREFIX = "Local save in "
# What str.strip() removes, spelled out so the Arrow version trims exactly the same.
WHITESPACE = "".join(chr(c) for c in range(0x110000) if chr(c).isspace())
# ASCII digits only; at most 12 integer and 6 fractional digits (an int64 even in millions).
FOLLOWERS_PATTERN = r"^([0-9]{1,12})(?:\.([0-9]{1,6}))?[ ]*([kKmM]?)$"
_FOLLOWERS_RE = re.compile(FOLLOWERS_PATTERN)
UNITS = {"": 1, "k": 1_000, "K": 1_000, "m": 1_000_000, "M": 1_000_000}
LEGACY_MAX_DIGITS = 18
# A model of shared.models.RAW_MODELS: derived from shared.records, so no static type.
RawModel = Any
# The clean record's keys, in order: each rule's values are put in this order.
CLEAN_KEYS: dict[RecordType, tuple[str, ...]] = {
    record_type: tuple(column.name for column in columns)
    for record_type, columns in CLEAN_COLUMNS.items()
}


class BadRecord(Exception):
    """A record that cannot be cleaned; ``reason`` labels the DLQ metric."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _text(column: str, value: str | None) -> str | None:
    """Trimmed text; placeholders and empty strings become None."""
    if value is None:
        return None
    value = value.strip(WHITESPACE)
    if not value or value in PLACEHOLDERS.get(column, ()):
        return None
    return value


def parse_follower_count(value: str | None) -> int | None:
    """``"12k"`` → 12000, ``"2M"`` → 2000000, ``"123"`` → 123; placeholders → None."""
    text = _text("follower_count", value)
    if text is None:
        return None
    match = _FOLLOWERS_RE.match(text)
    if match is None:
        raise BadRecord("bad_value", f"follower_count {text!r} is not a count")
    whole, fraction, unit = match.group(1), match.group(2) or "", match.group(3)
    scale = UNITS[unit]
    # integer arithmetic, truncating like int(Decimal): 1.5k -> 1500, 0.0005k -> 0
    return int(whole) * scale + int(fraction.ljust(6, "0")) * scale // 1_000_000


def _clean_pin(raw: RawModel) -> dict[str, Any]:
    save_location = _text("save_location", raw.save_location)
    if save_location is not None and save_location.startswith(SAVE_LOCATION_PREFIX):
        save_location = save_location[len(SAVE_LOCATION_PREFIX) :].strip(WHITESPACE) or None
    return {
        "ind": raw.index,
        "unique_id": _text("unique_id", raw.unique_id),
        "title": _text("title", raw.title),
        "description": _text("description", raw.description),
        "follower_count": parse_follower_count(raw.follower_count),
        "poster_name": _text("poster_name", raw.poster_name),
        "tag_list": _text("tag_list", raw.tag_list),
        "is_image_or_video": _text("is_image_or_video", raw.is_image_or_video),
        "image_src": _text("image_src", raw.image_src),
        "save_location": save_location,
        "category": _text("category", raw.category),
    }


def _iso(value: datetime | None) -> str | None:
    """ISO 8601, naive UTC (an offset is applied, then dropped)."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat()


def _clean_geo(raw: RawModel) -> dict[str, Any]:
    return {
        "ind": raw.ind,
        "country": _text("country", raw.country),
        "coordinates": [raw.latitude, raw.longitude],
        "timestamp": _iso(raw.timestamp),
    }


def _clean_user(raw: RawModel) -> dict[str, Any]:
    names = [
        n for n in (_text("first_name", raw.first_name), _text("last_name", raw.last_name)) if n
    ]
    return {
        "ind": raw.ind,
        "user_name": " ".join(names) or None,
        "age": raw.age,
        "date_joined": _iso(raw.date_joined),
    }


# The legacy profile's placeholders: the reference nulled these six, nothing else.
LEGACY_PLACEHOLDERS: dict[str, str] = {
    "title": NO_TITLE,
    "description": NO_DESCRIPTION_STORY,
    "poster_name": USER_INFO_ERROR,
    "follower_count": USER_INFO_ERROR,
    "tag_list": NO_TAGS,
    "image_src": IMAGE_SRC_ERROR,
}
_NOT_DIGITS = re.compile(r"[^0-9]")


def _legacy_text(column: str, value: str | None) -> str | None:
    return None if value is None or value == LEGACY_PLACEHOLDERS.get(column) else value


def _legacy_follower_count(value: str | None) -> int | None:
    """The reference's rule: keep the digits (``124k`` → 124, ``2M`` → 2)."""
    text = _legacy_text("follower_count", value)
    if text is None:
        return None
    digits = _NOT_DIGITS.sub("", text)
    if len(digits) > LEGACY_MAX_DIGITS:
        raise BadRecord("bad_value", f"follower_count {text!r} is too large")
    return int(digits) if digits else None


def _legacy_pin(raw: RawModel) -> dict[str, Any]:
    save_location = raw.save_location
    if save_location is not None:
        save_location = save_location.replace(SAVE_LOCATION_PREFIX, "", 1)
    return {
        "ind": raw.index,
        "unique_id": raw.unique_id,
        "title": _legacy_text("title", raw.title),
        "description": _legacy_text("description", raw.description),
        "follower_count": _legacy_follower_count(raw.follower_count),
        "poster_name": _legacy_text("poster_name", raw.poster_name),
        "tag_list": _legacy_text("tag_list", raw.tag_list),
        "is_image_or_video": raw.is_image_or_video,
        "image_src": _legacy_text("image_src", raw.image_src),
        "save_location": save_location,
        "category": raw.category,
    }


def _legacy_geo(raw: RawModel) -> dict[str, Any]:
    return {
        "ind": raw.ind,
        "country": raw.country,
        "coordinates": [raw.latitude, raw.longitude],
        "timestamp": _iso(raw.timestamp),
    }


def _legacy_user(raw: RawModel) -> dict[str, Any]:
    user_name = None
    if raw.first_name is not None and raw.last_name is not None:
        user_name = f"{raw.first_name} {raw.last_name}"
    return {
        "ind": raw.ind,
        "user_name": user_name,
        "age": raw.age,
        "date_joined": _iso(raw.date_joined),
    }


_CLEANERS: dict[Profile, dict[RecordType, Callable[[Any], dict[str, Any]]]] = {
    "standard": {"pin": _clean_pin, "geo": _clean_geo, "user": _clean_user},
    "legacy": {"pin": _legacy_pin, "geo": _legacy_geo, "user": _legacy_user},
}


def clean(record_type: RecordType, raw: object, profile: Profile = "standard") -> dict[str, Any]:
    """Clean one raw record; raise :class:`BadRecord` (and only that) when it can't be."""
    if record_type not in RECORD_TYPES:
        raise BadRecord("unknown_type", f"no record type {record_type!r}")
    if profile not in _CLEANERS:
        raise ValueError(f"unknown cleaning profile {profile!r}: {', '.join(PROFILES)}")
    if not isinstance(raw, Mapping):
        raise BadRecord("not_an_object", f"a {record_type} record must be a JSON object")
    key = RAW_KEYS[record_type]
    if raw.get(key) is None:
        raise BadRecord("missing_ind", f"a {record_type} record needs {key!r}")
    try:
        model = RAW_MODELS[record_type].model_validate(raw)
    except ValidationError as exc:
        raise BadRecord("wrong_type", exc.errors(include_url=False)[0]["msg"]) from exc
    try:
        values = _CLEANERS[profile][record_type](model)
    except BadRecord:
        raise
    except Exception as exc:  # a rule's own failure must not escape: DLQ it
        raise BadRecord("clean_error", repr(exc)) from exc
    return {key: values[key] for key in CLEAN_KEYS[record_type]}
