"""The lake's Delta tables, written and read with delta-rs (``deltalake``).

- ``<zone>/<type>`` (``raw/pin`` … ``clean/user``): the records, appended by the S3 sink,
  partitioned by ``date`` (``YYYY-MM-DD``, the UTC day of their Kafka timestamps).
- ``posts`` (batch/posts_table.py): the latest pin, geo and user of every post.

Exactly once: the sink commits a topic-partition's records together with a Delta *application
transaction* ``(app id, version)`` (:func:`sink_app_id`; version = the next offset to read). The
table's log keeps the latest version per app id, so a sink that restarts after a commit but
before its Kafka offset commit starts from the table's version (:func:`committed_offset`), and
two sinks that both believe they own a partition cannot both commit the same app id: delta-rs
refuses the second as a concurrent transaction. On S3, commits rely on conditional writes
(``If-None-Match: *``), as delta-rs 1.x does by default; no lock table is needed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

import pyarrow as pa
import pyarrow.dataset as pads
from deltalake import (
    CommitProperties,
    DeltaTable,
    TableFeatures,
    Transaction,
    WriterProperties,
    write_deltalake,
)
from deltalake.exceptions import TableNotFoundError

from shared.lake import LEGACY_FILES, ZONE_TABLES, Lake

PARTITION_COLUMN = "date"
# a checkpoint of the log every this many commits: opening a table replays at most this many
CHECKPOINT_INTERVAL = "100"


def sink_app_id(group_id: str, topic: str, partition: int) -> str:
    """The application-transaction id of one consumer group's topic-partition."""
    return f"{group_id}/{topic}/{partition}"


AsOf = int | datetime  # a table version, or a point in time
Compression = Literal["zstd", "snappy", "gzip", "none"]
_PARQUET_CODECS: dict[Compression, Literal["ZSTD", "SNAPPY", "GZIP", "UNCOMPRESSED"]] = {
    "zstd": "ZSTD",
    "snappy": "SNAPPY",
    "gzip": "GZIP",
    "none": "UNCOMPRESSED",
}


# the zones' codec (the sink's default): the history is mostly kept, seldom read whole
DEFAULT_COMPRESSION: Compression = "zstd"


def writer_properties(compression: Compression) -> WriterProperties:
    """How delta-rs writes a table's Parquet files: with ``compression``."""
    return WriterProperties(compression=_PARQUET_CODECS[compression])


def open_table(lake: Lake, relative: str, as_of: AsOf | None = None) -> DeltaTable | None:
    """The table at ``relative`` (its latest version, or as of a version or a time), or None
    when it does not exist yet."""
    try:
        table = DeltaTable(
            lake.table_uri(relative),
            storage_options=lake.storage_options or None,
            version=as_of if isinstance(as_of, int) else None,
        )
    except TableNotFoundError:
        return None
    if isinstance(as_of, datetime):
        table.load_as_version(as_of)  # the first version when the time is earlier still
        created = _created_at(lake, relative)
        if table.version() == 0 and created is not None and created > as_of:
            return None  # the table did not exist yet
    return table


def _created_at(lake: Lake, relative: str) -> datetime | None:
    """When the table's first version was committed (None: its log entry is gone)."""
    try:
        with lake.fs.open(lake.path(f"{relative}/_delta_log/{0:020d}.json"), "rb") as handle:
            for line in handle:
                info = json.loads(line).get("commitInfo")
                if info and "timestamp" in info:
                    return datetime.fromtimestamp(int(info["timestamp"]) / 1000, UTC)
    except FileNotFoundError:
        pass
    return None


def committed_offset(table: DeltaTable | None, app_id: str) -> int | None:
    """The next offset ``app_id`` committed to ``table`` (its transaction's version), or None."""
    if table is None:
        return None
    version: int | None = table.transaction_version(app_id)
    return version


@dataclass(frozen=True)
class Offsets:
    """A sink commit's position: ``app_id`` has written every record before ``next_offset``."""

    app_id: str
    next_offset: int


def with_date(table: pa.Table, day: date) -> pa.Table:
    """``table`` with its partition column: every row of one sink file has one day."""
    return table.append_column(
        pa.field(PARTITION_COLUMN, pa.string(), nullable=False),
        pa.repeat(pa.scalar(day.isoformat(), pa.string()), table.num_rows),
    )


def append(
    lake: Lake,
    relative: str,
    data: pa.Table,
    *,
    offsets: Sequence[Offsets] = (),
    metadata: Mapping[str, Any] | None = None,
    compression: Compression = DEFAULT_COMPRESSION,
    replace_where: str | None = None,
    table: DeltaTable | None = None,
) -> int:
    """Append ``data`` to the table at ``relative`` in one commit (creating the table,
    partitioned by ``date`` when ``data`` has it, on its first write), with ``offsets`` as
    application transactions; the table's new version. With ``replace_where`` (a SQL
    predicate every row of ``data`` meets), the rows that meet it are replaced instead, in the
    same commit. ``table``: the table opened already (it is brought up to the new version),
    which spares reading its log again."""
    transactions = [Transaction(o.app_id, o.next_offset) for o in offsets] or None
    target: DeltaTable | str = lake.table_uri(relative) if table is None else table
    options: dict[str, Any] = {
        "partition_by": [PARTITION_COLUMN] if PARTITION_COLUMN in data.schema.names else None,
        "storage_options": lake.storage_options or None,
        "configuration": {"delta.checkpointInterval": CHECKPOINT_INTERVAL},
        "writer_properties": writer_properties(compression),
        "commit_properties": CommitProperties(
            custom_metadata=dict(metadata or {}), app_transactions=transactions
        ),
    }
    if replace_where is None:
        write_deltalake(target, data, mode="append", **options)
    else:
        write_deltalake(target, data, mode="overwrite", predicate=replace_where, **options)
    if table is None:
        table = open_table(lake, relative)
        assert table is not None  # just written (a table given is brought up to date by it)
    if list_invariants(table):
        table.update_incremental()
    return table.version()


def list_invariants(table: DeltaTable) -> bool:
    """Make the table readable by delta-spark; whether it changed. With table features
    (writer version 7, which ``timestamp_ntz`` columns need), delta-spark takes NOT NULL
    columns for the feature "invariants" and refuses a table whose protocol does not list it;
    delta-rs does not list it: this adds it to the protocol, once."""
    protocol = table.protocol()
    if protocol.min_writer_version < 7 or "invariants" in (protocol.writer_features or []):
        return False
    if all(field.nullable for field in table.schema().fields):
        return False
    table.alter.add_feature(TableFeatures.Invariants, allow_protocol_versions_increase=True)
    return True


def dataset(lake: Lake, relative: str, as_of: AsOf | None = None) -> pads.Dataset | None:
    """The table's files as one Arrow dataset (what DuckDB scans), or None without a table."""
    table = open_table(lake, relative, as_of)
    return None if table is None else table.to_pyarrow_dataset()


# Reader features that do not change how a data file reads: with only these, a snapshot's
# files are its rows (no deletion vectors, no column mapping).
PLAIN_READER_FEATURES = frozenset({"timestampNtz", "v2Checkpoint", "vacuumProtocolCheck"})


def local_parquet_files(lake: Lake, table: DeltaTable) -> list[str] | None:
    """The paths of a snapshot's data files when an engine may read them as plain Parquet
    (DuckDB's own reader is about twice as fast as the Arrow dataset): a ``file://`` lake, an
    unpartitioned table, reader features in :data:`PLAIN_READER_FEATURES`, at least one file.
    None otherwise: read :func:`dataset`."""
    if lake.is_s3 or table.metadata().partition_columns:
        return None
    if not set(table.protocol().reader_features or ()) <= PLAIN_READER_FEATURES:
        return None
    files = [uri.removeprefix("file://") for uri in table.file_uris()]
    return files or None


def legacy_files(lake: Lake, relative: str) -> list[str]:
    """The table folder's Parquet files of the lake before Delta (``pinpipe lake migrate``)."""
    zone, record_type = relative.split("/")
    return sorted(lake.fs.glob(lake.path(LEGACY_FILES.format(zone=zone, record_type=record_type))))


def unmigrated(lake: Lake) -> list[str]:
    """The tables whose folders hold legacy files but no Delta table yet."""
    return [
        relative
        for relative in ZONE_TABLES
        if open_table(lake, relative) is None and legacy_files(lake, relative)
    ]


class NotMigrated(RuntimeError):
    """The lake still has the Parquet layout before Delta."""


def require_migrated(lake: Lake) -> None:
    """Raise NotMigrated, saying what to run, when a table folder holds legacy files only:
    writing or reading the table would not see them."""
    legacy = unmigrated(lake)
    if legacy:
        raise NotMigrated(
            f"{', '.join(legacy)} in {lake.url} hold Parquet files of the lake before Delta: "
            "run `pinpipe lake migrate` once (with the sink stopped)"
        )
