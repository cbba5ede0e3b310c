"""Wire schemas: raw records as the source database returns them, clean records as the
cleaner emits them (column order fixed by DESIGN.md), and DLQ entries.

The record models are derived from the columns of :mod:`shared.records`. Raw models are lenient
where the source is (every column but the key may be null or absent); clean models are what the
lake's clean zone and the aggregator rely on.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from shared.records import CLEAN_COLUMNS, RAW_COLUMNS, Column, ColumnType
from shared.topics import DLQ_MAX_ORIGINAL_BYTES, RecordType

DLQ_MAX_DETAIL_CHARS = 2_000  # a reason's detail (an error message) is cut to this


class _Raw(BaseModel):
    model_config = ConfigDict(extra="allow")  # keep unexpected fields, as received


class _Clean(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_PYDANTIC_TYPES: dict[ColumnType, Any] = {
    "int": int,
    "text": str,
    "float": float,
    "timestamp": datetime,
    "float_pair": Annotated[list[float | None], Field(min_length=2, max_length=2)],
}


def _annotation(column: Column) -> Any:
    """The key is never null; nor is a pair (always two values, each of which may be null)."""
    python_type = _PYDANTIC_TYPES[column.type]
    if column.key or column.type == "float_pair":
        return python_type
    return python_type | None


def _raw_model(record_type: RecordType) -> type[_Raw]:
    """Every column but the key may be absent (None)."""
    fields: dict[str, Any] = {
        column.name: (_annotation(column), ... if column.key else None)
        for column in RAW_COLUMNS[record_type]
    }
    return create_model(f"Raw{record_type.title()}", __base__=_Raw, **fields)


def _clean_model(record_type: RecordType) -> type[_Clean]:
    """Every column is there (null or not)."""
    fields: dict[str, Any] = {
        column.name: (_annotation(column), ...) for column in CLEAN_COLUMNS[record_type]
    }
    return create_model(f"Clean{record_type.title()}", __base__=_Clean, **fields)


RAW_MODELS: dict[RecordType, type[_Raw]] = {
    record_type: _raw_model(record_type) for record_type in RAW_COLUMNS
}
CLEAN_MODELS: dict[RecordType, type[_Clean]] = {
    record_type: _clean_model(record_type) for record_type in CLEAN_COLUMNS
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
