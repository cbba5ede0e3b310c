"""``pinpipe lake migrate``: a lake of plain Parquet files (the layout before Delta) turned into
the Delta tables, in place, without rewriting a file.

For each zone and record type whose folder holds legacy files (``LEGACY_FILES``) and no table:

1. the folder becomes a Delta table whose first commit adds every legacy file, ``date`` read
   from the folder names (delta-rs' ``convert_to_deltalake``);
2. a second commit records, for each topic-partition in it, the next offset after its files as
   the S3 sink's application transaction, so the sink resumes after the files, not from a Kafka
   offset that a file written before a crash may be ahead of.

Re-running changes nothing: a table that exists is not converted again, and a position the
table already holds is not recorded again. Stop the old sink before migrating; the new sink
refuses to start on a lake that still has legacy files and no table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import duckdb
import pyarrow as pa
from deltalake import CommitProperties, Field, Schema, convert_to_deltalake
from deltalake.schema import PrimitiveType

from shared.lake import ZONE_TABLES, Lake
from shared.lake_tables import (
    CHECKPOINT_INTERVAL,
    PARTITION_COLUMN,
    Offsets,
    append,
    legacy_files,
    list_invariants,
    open_table,
    sink_app_id,
)


@dataclass(frozen=True)
class Migrated:
    """What the migration did to one table."""

    table: str
    converted_files: int  # 0: the table existed already
    positions_recorded: int


def migrate(lake: Lake, group_id: str, report: Callable[[str], None] = print) -> list[Migrated]:
    """Migrate every table of the lake that has legacy files (see the module's docstring)."""
    done = []
    for relative in ZONE_TABLES:
        files = legacy_files(lake, relative)
        if not files:
            continue
        converted = 0
        if open_table(lake, relative) is None:
            report(f"{relative}: adding {len(files)} Parquet files to a new Delta table")
            convert_to_deltalake(
                lake.table_uri(relative),
                partition_by=Schema([Field(PARTITION_COLUMN, PrimitiveType("string"))]),
                partition_strategy="hive",
                configuration={"delta.checkpointInterval": CHECKPOINT_INTERVAL},
                storage_options=lake.storage_options or None,
                commit_properties=CommitProperties(custom_metadata={"pinpipe": "lake migrate"}),
            )
            converted = len(files)
            table = open_table(lake, relative)
            assert table is not None
            list_invariants(table)
        recorded = _record_positions(lake, relative, group_id)
        report(
            f"{relative}: "
            + (f"{converted} files converted, " if converted else "already a Delta table, ")
            + f"{recorded} sink positions recorded"
        )
        done.append(Migrated(relative, converted, recorded))
    if not done:
        report("no legacy Parquet files in the lake: nothing to migrate")
    return done


def _record_positions(lake: Lake, relative: str, group_id: str) -> int:
    """Record the sink's position of each topic-partition in the table that has none."""
    table = open_table(lake, relative)
    assert table is not None
    con = duckdb.connect()
    con.register("data", table.to_pyarrow_dataset())
    rows = con.execute(
        "SELECT _topic, _partition, max(_offset) + 1 FROM data GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    missing = [
        Offsets(sink_app_id(group_id, topic, partition), next_offset)
        for topic, partition, next_offset in rows
        if table.transaction_version(sink_app_id(group_id, topic, partition)) is None
    ]
    if missing:
        empty = pa.schema(table.schema().to_arrow()).empty_table()
        append(lake, relative, empty, offsets=missing, metadata={"pinpipe": "lake migrate"})
    return len(missing)
