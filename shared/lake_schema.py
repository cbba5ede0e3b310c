"""Arrow schemas of the lake's zones (a contract of the sink, the batch queries and the
backfill) and the conversion of Kafka records to Arrow tables.

Clean zone: typed columns (timestamps as timestamps, ``coordinates`` as list<double>,
``follower_count`` as int64). Raw zone: the record's key and value bytes as received. Both carry
``_topic, _partition, _offset, _ingested_at``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa

from shared.lake import Zone
from shared.topics import RecordType

META_FIELDS = [
    pa.field("_topic", pa.string(), nullable=False),
    pa.field("_partition", pa.int32(), nullable=False),
    pa.field("_offset", pa.int64(), nullable=False),
    pa.field("_ingested_at", pa.timestamp("ms", tz="UTC"), nullable=False),
]
_TS = pa.timestamp("us")

CLEAN_SCHEMAS: dict[RecordType, pa.Schema] = {
    "pin": pa.schema(
        [pa.field("ind", pa.int64(), nullable=False)]
        + [pa.field(n, pa.string()) for n in ("unique_id", "title", "description")]
        + [pa.field("follower_count", pa.int64())]
        + [
            pa.field(n, pa.string())
            for n in ("poster_name", "tag_list", "is_image_or_video", "image_src", "save_location", "category")
        ]
        + META_FIELDS
    ),
    "geo": pa.schema(
        [
            pa.field("ind", pa.int64(), nullable=False),
            pa.field("country", pa.string()),
            pa.field("coordinates", pa.list_(pa.float64())),
            pa.field("timestamp", _TS),
        ]
        + META_FIELDS
    ),
    "user": pa.schema(
        [
            pa.field("ind", pa.int64(), nullable=False),
            pa.field("user_name", pa.string()),
            pa.field("age", pa.int64()),
            pa.field("date_joined", _TS),
        ]
        + META_FIELDS
    ),
}
RAW_SCHEMA = pa.schema(
    [pa.field("key", pa.binary()), pa.field("value", pa.binary())] + META_FIELDS
)
_TIMESTAMP_COLUMNS = {"geo": ("timestamp",), "user": ("date_joined",)}


def clean_row(record_type: RecordType, value: bytes) -> dict[str, Any]:
    """A clean record's JSON as a row of its clean-zone schema (raises on unreadable input)."""
    row = orjson.loads(value)
    for column in _TIMESTAMP_COLUMNS.get(record_type, ()):
        if row.get(column) is not None:
            row[column] = datetime.fromisoformat(row[column]).replace(tzinfo=None)
    return row


def to_table(zone: Zone, record_type: RecordType, rows: list[dict[str, Any]]) -> pa.Table:
    schema = RAW_SCHEMA if zone == "raw" else CLEAN_SCHEMAS[record_type]
    return pa.Table.from_pylist(rows, schema=schema)
