"""The ``posts`` table: the latest pin, geo and user of every post, joined, kept up to date by
MERGE from the clean tables (``pinpipe lake refresh``).

Columns: ``ind``; the pin's, geo's and user's clean columns (no name is in two of them); and
per part the offset of the record it holds (``pin_offset``, ``geo_offset``, ``user_offset``:
null while the post has no such record). "Latest" is the standard profile's rule
(batch/sql/staging_standard.sql): the highest offset per part and ``ind``.

A refresh reads only what the clean tables added since the versions the last refresh read (the
files of their current version that the older one lacks), keeps the latest record of each
``ind`` and part, and merges them in one commit: a part is replaced only by a record of a
higher offset. A file compaction rewrote counts as added, harmlessly: its records lose to
themselves. The commit's metadata (``pinpipe.watermark``) holds the clean tables' versions it
covers. A query of the standard profile reads ``posts`` plus what the clean tables added past
the watermark (:func:`newer_records`), so its answers cover the whole lake however stale
``posts`` is, and cost what the posts cost, not what the history does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads
from deltalake import CommitProperties, DeltaTable

from shared.age_groups import age_group_sql
from shared.lake import Lake, table_path
from shared.lake_tables import AsOf, Compression, append, open_table, writer_properties
from shared.records import CLEAN_COLUMNS
from shared.topics import RECORD_TYPES, RecordType

POSTS = "posts"
# Every query of the standard profile reads the whole table: Snappy decodes faster than the
# zstd of the history (about 0.3 s of the nine at 10 M posts, on two cores)
COMPRESSION: Compression = "snappy"
WATERMARK = "watermark"  # the key of the refresh's commit metadata (under "pinpipe")
# each part's columns in the posts table: its clean columns but ind
PART_COLUMNS: dict[RecordType, tuple[str, ...]] = {
    record_type: tuple(c.name for c in columns if not c.key)
    for record_type, columns in CLEAN_COLUMNS.items()
}


def offset_column(record_type: RecordType) -> str:
    return f"{record_type}_offset"


def has_column(record_type: RecordType) -> str:
    """current_posts' column of whether a post has a record of ``record_type``."""
    return f"has_{record_type}"


# What the nine questions read of a post (its age group, computed once) and which of its parts
# it has: current_posts (and the staging views over it) select these alone, and an engine
# builds it once (batch/questions.py; a view naming more would not bind after that, in DuckDB
# or in Spark). The fewer and narrower, the faster it is built.
QUESTION_COLUMNS: tuple[str, ...] = (
    "category", "follower_count", "poster_name", "country", "timestamp", "age_group",
    "date_joined", *(has_column(t) for t in RECORD_TYPES),
)  # fmt: skip


Watermark = dict[str, int]  # clean table → the version a refresh read up to


@dataclass(frozen=True)
class Refreshed:
    records: int  # newer clean records read
    posts_changed: int  # posts inserted or updated
    version: int | None  # of the posts table (None: nothing to do)
    seconds: float


def watermark(posts: DeltaTable | None) -> Watermark:
    """The clean tables' versions the last refresh covered (empty: none yet)."""
    if posts is None:
        return {}
    for commit in posts.history(50):  # newest first; compactions and vacuums carry none
        if int(commit.get("version", -1)) > posts.version():
            continue  # a table loaded as of an older version sees only what it covered
        pinpipe = commit.get("pinpipe")
        if isinstance(pinpipe, dict) and WATERMARK in pinpipe:
            return {table: int(version) for table, version in pinpipe[WATERMARK].items()}
    return {}


def newer_records(
    lake: Lake, covered: Watermark, as_of: AsOf | None = None
) -> tuple[dict[RecordType, pads.Dataset | pa.Table], Watermark]:
    """Per record type, the clean records in files added after the ``covered`` version (every
    file when not covered); and the versions read."""
    found: dict[RecordType, pads.Dataset | pa.Table] = {}
    versions: Watermark = {}
    for record_type in RECORD_TYPES:
        relative = table_path("clean", record_type)
        table = open_table(lake, relative, as_of)
        if table is None:
            continue
        versions[relative] = table.version()
        data = table.to_pyarrow_dataset()
        old = _files(lake, relative, covered.get(relative))
        if old is None:
            found[record_type] = data
            continue
        assert isinstance(data, pads.FileSystemDataset)
        fragments = [f for f in data.get_fragments() if f.path.rsplit("/", 1)[-1] not in old]
        found[record_type] = pads.FileSystemDataset(
            fragments, data.schema, data.format, data.filesystem
        )
    return found, versions


def _files(lake: Lake, relative: str, version: int | None) -> set[str] | None:
    """The names of a table version's data files (None: no version, or one whose log is gone).
    File names are unique in a table (delta-rs names its files by UUID)."""
    if version is None:
        return None
    try:
        table = open_table(lake, relative, version)
    except Exception:  # its log was cleaned up: read everything (correct, only slower)
        return None
    if table is None:
        return None
    paths = pa.table(table.get_add_actions(flatten=True)).column("path").to_pylist()
    return {path.rsplit("/", 1)[-1] for path in paths}


def latest_sql(record_type: RecordType, source: str) -> str:
    """The latest record of each ind among ``source``'s clean records of ``record_type``: its
    clean columns and ``_offset`` (portable SQL: DuckDB and Spark)."""
    columns = ", ".join(("ind", *PART_COLUMNS[record_type], "_offset"))
    return (
        f"SELECT {columns} FROM (SELECT {columns}, row_number() OVER "
        f"(PARTITION BY ind ORDER BY _offset DESC) AS _rank FROM {source}) WHERE _rank = 1"
    )


def staging_sql(any_newer: bool = True) -> str:
    """The standard profile's staging views over ``posts`` and the clean records added past
    its watermark (``new_pin``, ``new_geo``, ``new_user``). ``current_posts``: each post as
    ``posts`` holds it unless a newer record of one of its parts was added since (only those
    few posts are joined again), as :data:`QUESTION_COLUMNS` (its age group from
    shared/age_groups.py); without newer records (``any_newer`` false), ``posts`` as it is,
    which spares a join over every post (0.2 s of the nine at 10 M posts). ``pins``, ``geos``
    and ``users`` are filters of it; :func:`joins_sql` follows (in place of
    staging_common.sql)."""
    columns = ["ind"]
    for record_type in RECORD_TYPES:
        columns += [*PART_COLUMNS[record_type], offset_column(record_type)]
    statements = [
        f"CREATE OR REPLACE VIEW latest_new_{record_type} AS "
        + latest_sql(record_type, f"new_{record_type}")
        for record_type in RECORD_TYPES
    ]
    statements.append(
        "CREATE OR REPLACE VIEW new_inds AS "
        + " UNION ".join(f"SELECT ind FROM latest_new_{t}" for t in RECORD_TYPES)
    )
    patched = ["n.ind"]
    joins = ["LEFT JOIN posts AS p ON p.ind = n.ind"]
    for record_type in RECORD_TYPES:
        offset, new = offset_column(record_type), f"new_{record_type}"
        newer = f"{new}._offset IS NOT NULL AND (p.{offset} IS NULL OR {new}._offset > p.{offset})"
        patched += [
            f"CASE WHEN {newer} THEN {new}.{c} ELSE p.{c} END AS {c}"
            for c in PART_COLUMNS[record_type]
        ]
        patched.append(f"CASE WHEN {newer} THEN {new}._offset ELSE p.{offset} END AS {offset}")
        joins.append(f"LEFT JOIN latest_new_{record_type} AS {new} ON {new}.ind = n.ind")
    derived = {
        "age_group": age_group_sql("age"),
        **{has_column(t): f"{offset_column(t)} IS NOT NULL" for t in RECORD_TYPES},
    }
    selected = [f"{derived[c]} AS {c}" if c in derived else c for c in QUESTION_COLUMNS]
    current = (
        f"SELECT {', '.join(columns)} FROM posts AS p "
        "WHERE NOT EXISTS (SELECT 1 FROM new_inds AS n WHERE n.ind = p.ind) "
        f"UNION ALL SELECT {', '.join(patched)} FROM new_inds AS n {' '.join(joins)}"
    )
    statements.append(
        f"CREATE OR REPLACE VIEW current_posts AS SELECT {', '.join(selected)} "
        + (f"FROM ({current}) AS post" if any_newer else "FROM posts")
    )
    # the questions' columns of every part: `users` then holds the pins too
    names: dict[RecordType, str] = {"pin": "pins", "geo": "geos", "user": "users"}
    for record_type, name in names.items():
        statements.append(
            f"CREATE OR REPLACE VIEW {name} AS SELECT {', '.join(QUESTION_COLUMNS)} "
            f"FROM current_posts WHERE {has_column(record_type)}"
        )
    return ";\n".join(statements) + ";\n"


def values_sql(column: str) -> str:
    """The values one of a part's columns takes in ``current_posts`` (and perhaps a few more):
    those of ``posts`` and of the records added since. Read from the tables themselves, not
    through ``current_posts``, DuckDB lists them from the Parquet dictionaries (at 10 M posts:
    0.02 s a column, not 0.1 s)."""
    (record_type,) = [t for t, columns in PART_COLUMNS.items() if column in columns]
    return f"SELECT {column} FROM posts UNION SELECT {column} FROM new_{record_type}"


def joins_sql() -> str:
    """staging_common.sql's ``pin_geo`` and ``pin_user`` over the posts table: its rows are
    joined already, so these are filters, not joins (the columns the questions read; no
    ``ind``, which only the joins need)."""
    return (
        "CREATE OR REPLACE VIEW pin_geo AS SELECT category, follower_count, poster_name, "
        f"country, timestamp FROM current_posts WHERE {has_column('pin')} AND "
        f"{has_column('geo')};\n"
        "CREATE OR REPLACE VIEW pin_user AS SELECT category, follower_count, age_group, "
        f"date_joined FROM users WHERE {has_column('pin')};\n"
    )


def refresh(lake: Lake, report: Callable[[str], None] = print) -> Refreshed:
    """Merge what the clean tables added since the last refresh into ``posts``."""
    started = time.perf_counter()
    posts = open_table(lake, POSTS)
    newer, versions = newer_records(lake, watermark(posts))
    con = duckdb.connect()
    records = 0
    for record_type in RECORD_TYPES:
        data = newer.get(record_type)
        if data is None:
            data = _empty_clean(record_type)
        con.register(f"new_{record_type}", data)
        con.execute(
            f"CREATE TABLE latest_{record_type} AS " + latest_sql(record_type, f"new_{record_type}")
        )
        ((count,),) = con.execute(f"SELECT count(*) FROM new_{record_type}").fetchall()
        records += count
    source: pa.Table = con.sql(_joined_sql()).to_arrow_table()
    metadata = {"pinpipe": {WATERMARK: versions}}
    if source.num_rows == 0 and posts is not None:
        report("posts: nothing new in the clean tables")
        return Refreshed(records, 0, None, time.perf_counter() - started)
    if posts is None:
        version = append(lake, POSTS, source, metadata=metadata, compression=COMPRESSION)
        changed = source.num_rows
    else:
        result = _merge(posts, source, metadata)
        changed = int(result.get("num_target_rows_inserted", 0)) + int(
            result.get("num_target_rows_updated", 0)
        )
        version = posts.version()
    seconds = time.perf_counter() - started
    report(
        f"posts: {records} newer clean records, {changed} posts inserted or updated, "
        f"version {version}, in {seconds:.1f} s ({records / max(seconds, 1e-9):,.0f} records/s)"
    )
    return Refreshed(records, changed, version, seconds)


def _empty_clean(record_type: RecordType) -> pa.Table:
    from shared.lake_schema import CLEAN_SCHEMAS

    return CLEAN_SCHEMAS[record_type].empty_table()


def _joined_sql() -> str:
    """The three latest sets joined on ind: one row per post with anything new."""
    parts = []
    for record_type in RECORD_TYPES:
        alias = record_type[0]
        parts += [f"{alias}.{c}" for c in PART_COLUMNS[record_type]]
        parts.append(f"{alias}._offset AS {offset_column(record_type)}")
    return (
        "SELECT coalesce(p.ind, g.ind, u.ind) AS ind, " + ", ".join(parts) + " "
        "FROM latest_pin AS p FULL JOIN latest_geo AS g ON p.ind = g.ind "
        "FULL JOIN latest_user AS u ON coalesce(p.ind, g.ind) = u.ind"
    )


def _merge(posts: DeltaTable, source: pa.Table, metadata: dict[str, Any]) -> dict[str, Any]:
    """Each part of a post replaced only by a newer record of it."""
    updates, any_newer = {}, []
    for record_type in RECORD_TYPES:
        offset = offset_column(record_type)
        newer = f"s.{offset} IS NOT NULL AND (t.{offset} IS NULL OR s.{offset} > t.{offset})"
        any_newer.append(f"({newer})")
        for column in (*PART_COLUMNS[record_type], offset):
            updates[column] = f"CASE WHEN {newer} THEN s.{column} ELSE t.{column} END"
    result: dict[str, Any] = (
        posts.merge(
            source,
            predicate="t.ind = s.ind",
            source_alias="s",
            target_alias="t",
            writer_properties=writer_properties(COMPRESSION),
            commit_properties=CommitProperties(custom_metadata=metadata),
        )
        .when_matched_update(updates, predicate=" OR ".join(any_newer))
        .when_not_matched_insert_all()
        .execute()
    )
    return result
