"""Kafka records of one partition → one Arrow table of the lake's schema, column by column.

Raw zone: the key and value bytes as received. Clean zone: the values parsed by Arrow's JSON
reader against the clean schema (types checked in C++: a wrong type, a missing ``ind``, an
unknown field or a bad timestamp fails), so no Python runs per field. When a batch fails, the
records are parsed one by one to set the bad ones apart (for the DLQ) from the good ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from shared.lake import Zone
from shared.lake_schema import (
    CLEAN_RECORD_SCHEMAS,
    CLEAN_SCHEMAS,
    INGESTED_AT,
    RAW_SCHEMA,
    parse_json_values,
)
from shared.topics import RecordType


@dataclass
class Columns:
    """Records of one topic-partition, kept as columns until their file is written."""

    keys: list[bytes | None] = field(default_factory=list)
    values: list[bytes] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    timestamps_ms: list[int] = field(default_factory=list)

    def add(self, key: bytes | None, value: bytes, offset: int, timestamp_ms: int) -> None:
        self.keys.append(key)
        self.values.append(value)
        self.offsets.append(offset)
        self.timestamps_ms.append(timestamp_ms)

    def extend(
        self,
        keys: list[bytes | None],
        values: list[bytes],
        offsets: list[int],
        timestamps_ms: list[int],
    ) -> None:
        self.keys += keys
        self.values += values
        self.offsets += offsets
        self.timestamps_ms += timestamps_ms

    def __len__(self) -> int:
        return len(self.offsets)


@dataclass(frozen=True)
class Unreadable:
    """A clean-topic record that does not fit the clean schema."""

    offset: int
    value: bytes
    error: str


def _meta(topic: str, partition: int, columns: Columns, rows: list[int] | None) -> list[pa.Array]:
    offsets, stamps = columns.offsets, columns.timestamps_ms
    if rows is not None:
        offsets, stamps = [offsets[i] for i in rows], [stamps[i] for i in rows]
    count = len(offsets)
    return [
        pa.repeat(pa.scalar(topic, pa.string()), count),
        pa.repeat(pa.scalar(partition, pa.int32()), count),
        pa.array(offsets, pa.int64()),
        pa.array(stamps, pa.int64()).cast(pa.timestamp("ms", tz="UTC")).cast(INGESTED_AT),
    ]


def raw_table(topic: str, partition: int, columns: Columns) -> pa.Table:
    arrays = [
        pa.array(columns.keys, pa.binary()),
        pa.array(columns.values, pa.binary()),
        *_meta(topic, partition, columns, None),
    ]
    return pa.Table.from_arrays(arrays, schema=RAW_SCHEMA)


def clean_table(
    record_type: RecordType, topic: str, partition: int, columns: Columns
) -> tuple[pa.Table, list[Unreadable]]:
    """The clean-zone table of ``columns``, and the records that do not fit it."""
    parsed = parse_json_values(CLEAN_RECORD_SCHEMAS[record_type], columns.values)
    unreadable = [
        Unreadable(columns.offsets[i], columns.values[i], error) for i, error in parsed.failed
    ]
    arrays = [*parsed.table.columns, *_meta(topic, partition, columns, parsed.rows)]
    return pa.Table.from_arrays(arrays, schema=CLEAN_SCHEMAS[record_type]), unreadable


def to_lake_table(
    zone: Zone, record_type: RecordType, topic: str, partition: int, columns: Columns
) -> tuple[pa.Table, list[Unreadable]]:
    if zone == "raw":
        return raw_table(topic, partition, columns), []
    return clean_table(record_type, topic, partition, columns)
