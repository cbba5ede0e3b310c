"""Wire schemas: raw records as the source database returns them, clean records as the
cleaner emits them (column order fixed by DESIGN.md), and DLQ entries.

Raw models are lenient where the source is (every text column may be null); clean models are
what the lake's clean zone and the aggregator rely on.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from shared.topics import DLQ_MAX_ORIGINAL_BYTES, RecordType

DLQ_MAX_DETAIL_CHARS = 2_000  # a reason's detail (an error message) is cut to this


class _Raw(BaseModel):
    model_config = ConfigDict(extra="allow")  # keep unexpected fields, as received


class RawPin(_Raw):
    index: int
    unique_id: str | None = None
    title: str | None = None
    description: str | None = None
    poster_name: str | None = None
    follower_count: str | None = None
    tag_list: str | None = None
    is_image_or_video: str | None = None
    image_src: str | None = None
    downloaded: int | None = None
    save_location: str | None = None
    category: str | None = None


class RawGeo(_Raw):
    ind: int
    timestamp: datetime | None = None
    latitude: float | None = None
    longitude: float | None = None
    country: str | None = None


class RawUser(_Raw):
    ind: int
    first_name: str | None = None
    last_name: str | None = None
    age: int | None = None
    date_joined: datetime | None = None


class _Clean(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CleanPin(_Clean):
    ind: int
    unique_id: str | None
    title: str | None
    description: str | None
    follower_count: int | None
    poster_name: str | None
    tag_list: str | None
    is_image_or_video: str | None
    image_src: str | None
    save_location: str | None
    category: str | None


class CleanGeo(_Clean):
    ind: int
    country: str | None
    coordinates: Annotated[list[float | None], Field(min_length=2, max_length=2)]
    timestamp: datetime | None


class CleanUser(_Clean):
    ind: int
    user_name: str | None
    age: int | None
    date_joined: datetime | None


RAW_MODELS: dict[RecordType, type[_Raw]] = {"pin": RawPin, "geo": RawGeo, "user": RawUser}
CLEAN_MODELS: dict[RecordType, type[_Clean]] = {
    "pin": CleanPin,
    "geo": CleanGeo,
    "user": CleanUser,
}


class DlqEntry(BaseModel):
    """A record the cleaner (or the sink) could not take: the original bytes and why.

    ``original_base64`` holds the original's first ``DLQ_MAX_ORIGINAL_BYTES`` bytes; its whole
    length and SHA-256 are always there, so that an entry fits in one Kafka record however large
    the original was (an entry that does not fit would fail its transaction for ever and stall
    the partition behind it). Build entries with :meth:`of`.
    """

    original_base64: str
    original_bytes: int
    original_sha256: str
    original_truncated: bool
    source_topic: str
    source_partition: int
    source_offset: int
    reason: str  # low-cardinality, used as the metric label
    detail: str
    failed_at: datetime

    @classmethod
    def of(
        cls,
        original: bytes,
        *,
        source_topic: str,
        source_partition: int,
        source_offset: int,
        reason: str,
        detail: str,
    ) -> DlqEntry:
        kept = original[:DLQ_MAX_ORIGINAL_BYTES]
        return cls(
            original_base64=base64.b64encode(kept).decode(),
            original_bytes=len(original),
            original_sha256=hashlib.sha256(original).hexdigest(),
            original_truncated=len(kept) < len(original),
            source_topic=source_topic,
            source_partition=source_partition,
            source_offset=source_offset,
            reason=reason,
            detail=detail[:DLQ_MAX_DETAIL_CHARS],
            failed_at=datetime.now(UTC),
        )
