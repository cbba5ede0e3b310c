"""Arrow schemas of the lake's zones (a contract of the sink, the batch queries and the
backfill) and the conversion of Kafka records to Arrow tables.

Clean zone: the clean columns of :mod:`shared.records`, typed (timestamps as timestamps,
``coordinates`` as list<double>, ``follower_count`` as int64). Raw zone: the record's key and
value bytes as received. Both carry ``_topic, _partition, _offset, _ingested_at``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.json as pajson

from shared.records import CLEAN_COLUMNS, Column, ColumnType
from shared.topics import RecordType

INGESTED_AT = pa.timestamp("us", tz="UTC")
META_FIELDS = [
    pa.field("_topic", pa.string(), nullable=False),
    pa.field("_partition", pa.int32(), nullable=False),
    pa.field("_offset", pa.int64(), nullable=False),
    # Kafka's millisecond timestamp, in Delta's one timestamp unit (microseconds)
    pa.field("_ingested_at", INGESTED_AT, nullable=False),
]
# The clean zone's Arrow type of each column type: timestamps are naive UTC.
CLEAN_ARROW_TYPES: dict[ColumnType, pa.DataType] = {
    "int": pa.int64(),
    "text": pa.string(),
    "float": pa.float64(),
    "timestamp": pa.timestamp("us"),
    "float_pair": pa.list_(pa.float64()),
}


def _schema(*fields: pa.Field) -> pa.Schema:
    """Record columns, then the metadata columns every lake file carries."""
    return pa.schema([*fields, *META_FIELDS])


def _clean_field(column: Column) -> pa.Field:
    return pa.field(column.name, CLEAN_ARROW_TYPES[column.type], nullable=not column.key)


# What a clean record itself holds: the clean schemas without the metadata columns.
CLEAN_RECORD_SCHEMAS: dict[RecordType, pa.Schema] = {
    record_type: pa.schema([_clean_field(column) for column in columns])
    for record_type, columns in CLEAN_COLUMNS.items()
}
CLEAN_SCHEMAS: dict[RecordType, pa.Schema] = {
    record_type: _schema(*schema) for record_type, schema in CLEAN_RECORD_SCHEMAS.items()
}
RAW_SCHEMA = _schema(pa.field("key", pa.binary()), pa.field("value", pa.binary()))
_JSON_BLOCK_BYTES = 1 << 24
_TIMESTAMP_COLUMNS: dict[RecordType, tuple[str, ...]] = {
    record_type: tuple(column.name for column in columns if column.type == "timestamp")
    for record_type, columns in CLEAN_COLUMNS.items()
}


def clean_row(record_type: RecordType, value: bytes) -> dict[str, Any]:
    """A clean record's JSON as a row of its clean-zone schema (raises on unreadable input)."""
    row: dict[str, Any] = orjson.loads(value)
    for column in _TIMESTAMP_COLUMNS.get(record_type, ()):
        if row.get(column) is not None:
            row[column] = datetime.fromisoformat(row[column]).replace(tzinfo=None)
    return row


def read_json_lines(schema: pa.Schema, lines: bytes, unexpected: str = "error") -> pa.Table:
    """JSON lines → a table of ``schema`` by Arrow's JSON reader (types checked in C++; a
    mismatch raises ``pa.ArrowInvalid``). ``unexpected``: "error" or "ignore" unknown fields."""
    return pajson.read_json(
        io.BytesIO(lines),
        read_options=pajson.ReadOptions(
            use_threads=False, block_size=max(len(lines), _JSON_BLOCK_BYTES)
        ),
        parse_options=pajson.ParseOptions(
            explicit_schema=schema, unexpected_field_behavior=unexpected
        ),
    )


def parse_clean_json(record_type: RecordType, lines: bytes) -> pa.Table:
    """Clean records as JSON lines → a table of :data:`CLEAN_RECORD_SCHEMAS`: a wrong type, a
    null ``ind``, an unknown field or a bad timestamp raises ``pa.ArrowInvalid``."""
    return read_json_lines(CLEAN_RECORD_SCHEMAS[record_type], lines)


@dataclass(frozen=True)
class ParsedValues:
    """JSON values parsed into ``table``: the position of each parsed row, and the values that
    did not parse, with the reader's error."""

    table: pa.Table
    rows: list[int] | None  # None: every value, in order
    failed: list[tuple[int, str]]


def parse_json_values(
    schema: pa.Schema, values: list[bytes], unexpected: str = "error"
) -> ParsedValues:
    """One JSON object per value → rows of ``schema``, all at once; when that fails, value by
    value, to set the bad ones apart."""
    if not any(b"\n" in value for value in values):  # one object per line, as written
        try:
            table = read_json_lines(schema, b"\n".join(values), unexpected)
            if table.num_rows == len(values):
                return ParsedValues(table, None, [])
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    pieces, rows, failed = [], [], []
    for i, value in enumerate(values):
        try:
            piece = read_json_lines(schema, value, unexpected) if b"\n" not in value else None
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            failed.append((i, str(exc)[:300]))
            continue
        if piece is None or piece.num_rows != 1:
            failed.append((i, "not one JSON object"))
            continue
        pieces.append(piece)
        rows.append(i)
    table = pa.concat_tables(pieces) if pieces else schema.empty_table()
    return ParsedValues(table, rows, failed)
