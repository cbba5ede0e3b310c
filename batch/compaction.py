"""``pinpipe lake compact``, ``pinpipe lake vacuum`` and ``pinpipe lake upkeep``: the lake's
tables kept to few, large files.

The sink commits one small file per partition every minute at a trickle; compaction rewrites
each date's small files into files of about ``target_bytes`` (128 MiB by default) in one commit
per table, which removes the small files from the table and adds the merged ones: a reader sees
the table before or after it, never a record twice or missing, and the sink's appends go on
meanwhile (Delta's optimistic concurrency: appends never conflict with a compaction).
Vacuuming deletes the files no table version newer than ``retention`` (7 days by default) still
needs; time travel reaches back as far as the retention. :func:`upkeep` (the CronJob
``lake-upkeep``, every few minutes) refreshes ``posts``, compacts the tables that have gathered
``min_files`` files or more, and vacuums them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from deltalake import CommitProperties, DeltaTable

from batch import posts_table
from batch.posts_table import POSTS, refresh
from shared.lake import ZONE_TABLES, Lake
from shared.lake_tables import DEFAULT_COMPRESSION, open_table, writer_properties

DEFAULT_TARGET_BYTES = 128 * 1024 * 1024
LAKE_TABLES = (*ZONE_TABLES, POSTS)  # every table of the lake
DEFAULT_RETENTION = timedelta(days=7)


@dataclass(frozen=True)
class Compacted:
    table: str
    files_before: int
    files_after: int
    seconds: float


@dataclass(frozen=True)
class Vacuumed:
    table: str
    files_deleted: int


def file_count(table: DeltaTable) -> int:
    """The files of the table's current version."""
    return len(table.file_uris())


def compact(
    lake: Lake,
    target_bytes: int = DEFAULT_TARGET_BYTES,
    tables: tuple[str, ...] = LAKE_TABLES,
    report: Callable[[str], None] = print,
    min_files: int = 2,
) -> list[Compacted]:
    """Compact each table of ``tables`` that exists and has ``min_files`` files or more; what
    each went from and to."""
    done = []
    for relative in tables:
        table = open_table(lake, relative)
        if table is None or file_count(table) < min_files:
            continue
        before, started = file_count(table), time.perf_counter()
        codec = posts_table.COMPRESSION if relative == POSTS else DEFAULT_COMPRESSION
        table.optimize.compact(
            target_size=target_bytes,
            writer_properties=writer_properties(codec),
            commit_properties=CommitProperties(custom_metadata={"pinpipe": "lake compact"}),
        )
        table.update_incremental()
        result = Compacted(relative, before, file_count(table), time.perf_counter() - started)
        report(
            f"{relative}: {result.files_before} → {result.files_after} files "
            f"in {result.seconds:.1f} s (version {table.version()})"
        )
        done.append(result)
    return done


def vacuum(
    lake: Lake,
    retention: timedelta = DEFAULT_RETENTION,
    dry_run: bool = False,
    tables: tuple[str, ...] = LAKE_TABLES,
    report: Callable[[str], None] = print,
) -> list[Vacuumed]:
    """Delete the files no version of the last ``retention`` needs, in each table."""
    done = []
    for relative in tables:
        table = open_table(lake, relative)
        if table is None:
            continue
        deleted = table.vacuum(
            retention_hours=max(0, int(retention.total_seconds() // 3600)),
            dry_run=dry_run,
            enforce_retention_duration=False,  # the retention is the command's, not the table's
            commit_properties=CommitProperties(custom_metadata={"pinpipe": "lake vacuum"}),
        )
        verb = "would delete" if dry_run else "deleted"
        report(f"{relative}: {verb} {len(deleted)} files")
        done.append(Vacuumed(relative, len(deleted)))
    return done


DEFAULT_UPKEEP_MIN_FILES = 64  # about ten minutes of a trickle's files in one table


def upkeep(
    lake: Lake,
    min_files: int = DEFAULT_UPKEEP_MIN_FILES,
    target_bytes: int = DEFAULT_TARGET_BYTES,
    retention: timedelta = DEFAULT_RETENTION,
    report: Callable[[str], None] = print,
) -> None:
    """Refresh ``posts``; compact the tables with ``min_files`` files or more, then vacuum
    them."""
    refresh(lake, report=report)
    compacted = compact(lake, target_bytes, report=report, min_files=min_files)
    if compacted:
        vacuum(lake, retention, tables=tuple(c.table for c in compacted), report=report)
