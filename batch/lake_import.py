"""``pinpipe lake import``: rows from a file into the lake's layout (reference data, migrations).

Clean zone: JSON lines of clean records (the cleaner's output) or a CSV with the clean columns
(the reference project's export: ``List(lat, lon)`` or ``[lat, lon]`` coordinates, timestamps
with or without an offset, empty cells as null). Raw zone: JSON lines, each line kept as the
value bytes. The file's rows are committed to the zone's Delta table as if they came from the
topic ``import.<file stem>``, partition 0, rows as offsets, dated today: importing the same file
again replaces its rows, in one commit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from shared.lake import Lake, Zone, table_path
from shared.lake_schema import (
    CLEAN_RECORD_SCHEMAS,
    CLEAN_SCHEMAS,
    INGESTED_AT,
    RAW_SCHEMA,
    parse_clean_json,
)
from shared.lake_tables import DEFAULT_COMPRESSION, Compression, append, with_date
from shared.topics import RecordType


@dataclass(frozen=True)
class Imported:
    table: str  # its URI
    version: int
    rows: int


def import_file(
    lake: Lake,
    zone: Zone,
    record_type: RecordType,
    source: Path,
    compression: Compression = DEFAULT_COMPRESSION,
) -> Imported:
    """Write ``source`` into the lake; raise ``ValueError`` naming what does not fit."""
    if zone == "clean":
        records = _clean_records(record_type, source)
    elif source.suffix == ".jsonl":
        lines = [line for line in source.read_bytes().splitlines() if line.strip()]
        records = pa.table(
            {"key": pa.nulls(len(lines), pa.binary()), "value": pa.array(lines, pa.binary())}
        )
    else:
        raise ValueError("the raw zone takes JSON lines (.jsonl) only")
    topic = f"import.{source.stem}"
    now_ms = time.time_ns() // 1_000_000
    meta = {
        "_topic": pa.repeat(pa.scalar(topic), records.num_rows),
        "_partition": pa.repeat(pa.scalar(0, pa.int32()), records.num_rows),
        "_offset": pa.array(range(records.num_rows), pa.int64()),
        "_ingested_at": pa.repeat(pa.scalar(now_ms, pa.int64()), records.num_rows)
        .cast(pa.timestamp("ms", tz="UTC"))
        .cast(INGESTED_AT),
    }
    schema = RAW_SCHEMA if zone == "raw" else CLEAN_SCHEMAS[record_type]
    table = pa.Table.from_arrays([*records.columns, *meta.values()], schema=schema)
    day = datetime.fromtimestamp(now_ms / 1000, UTC).date()
    relative = table_path(zone, record_type)
    version = append(
        lake,
        relative,
        with_date(table, day),
        metadata={"pinpipe": {"import": source.name}},
        compression=compression,
        replace_where=f"_topic = '{topic.replace(chr(39), chr(39) * 2)}'",
    )
    return Imported(lake.table_uri(relative), version, table.num_rows)


def _clean_records(record_type: RecordType, source: Path) -> pa.Table:
    if source.suffix == ".jsonl":
        try:
            return parse_clean_json(record_type, source.read_bytes())
        except pa.ArrowInvalid as exc:
            raise ValueError(f"{source}: not clean {record_type} records: {exc}") from exc
    if source.suffix == ".csv":
        return _clean_csv(record_type, source)
    raise ValueError(f"{source}: a .csv or .jsonl file, please")


def _clean_csv(record_type: RecordType, source: Path) -> pa.Table:
    schema = CLEAN_RECORD_SCHEMAS[record_type]
    try:
        text = pacsv.read_csv(
            source,
            convert_options=pacsv.ConvertOptions(
                column_types={f.name: pa.string() for f in schema},
                strings_can_be_null=True,  # an empty cell is null
                include_columns=schema.names,
                include_missing_columns=True,
            ),
        )
    except pa.ArrowInvalid as exc:
        raise ValueError(f"{source}: not a CSV of clean {record_type} rows: {exc}") from exc
    columns = []
    for field in schema:
        values = text.column(field.name)
        try:
            columns.append(_typed(values, field.type))
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise ValueError(f"{source}: column {field.name}: {exc}") from exc
    if pc.any(pc.is_null(columns[0])).as_py():
        raise ValueError(f"{source}: a row has no ind")
    return pa.Table.from_arrays(columns, schema=schema)


def _typed(values: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
    if pa.types.is_list(target):  # "List(-42.0773, -163.698)" (Spark) or "[-42.0773, -163.698]"
        inner = pc.replace_substring_regex(values, r"^\s*(List\(|\[)|(\)|\])\s*$", "")
        return pc.cast(pc.split_pattern_regex(inner, r",\s*"), target)
    if pa.types.is_timestamp(target):  # with an offset (+0000, +01:00, Z) → naive UTC
        with_zone = pc.fill_null(pc.match_substring_regex(values, r"([+-]\d\d:?\d\d|Z)$"), False)
        none = pa.scalar(None, pa.string())
        zoned = pc.cast(pc.if_else(with_zone, values, none), pa.timestamp("us", tz="UTC"))
        naive = pc.cast(pc.if_else(with_zone, none, values), target)
        return pc.coalesce(pc.cast(zoned, target), naive)
    return pc.cast(values, target)
