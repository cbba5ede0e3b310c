"""Runs the analysis questions in DuckDB over the lake's clean tables (``file://`` or ``s3://``).

DuckDB scans each Delta table as the Arrow dataset delta-rs gives (the files of one table
version, with projection and filter pushdown), so no DuckDB extension is downloaded at run time.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Literal, get_args

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads
from deltalake import DeltaTable

from batch.posts_table import POSTS, newer_records, values_sql, watermark
from batch.questions import QUESTIONS, staging_sql, working_set
from shared.age_groups import LABELS as AGE_GROUP_LABELS
from shared.lake import Lake, table_path
from shared.lake_schema import CLEAN_SCHEMAS
from shared.lake_tables import (
    AsOf,
    dataset,
    local_parquet_files,
    open_table,
    require_migrated,
)
from shared.profiles import Profile
from shared.topics import RECORD_TYPES, RecordType


def connect(
    lake: Lake, profile: Profile = "standard", as_of: AsOf | None = None
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with views ``clean_pin|geo|user`` over the lake's clean tables (their
    latest versions, or as of a version or a time) and the staging views (``pins``, ``geos``,
    ``users``) of ``profile`` (shared/profiles.py). The standard profile reads the ``posts``
    table and the clean records added since its refresh when there is one
    (batch/posts_table.py), every clean record otherwise: the same answers."""
    require_migrated(lake)
    con = duckdb.connect()
    for record_type in RECORD_TYPES:
        source = dataset(lake, table_path("clean", record_type), as_of)
        con.register(f"_clean_{record_type}", _empty(record_type) if source is None else source)
        con.execute(f"CREATE VIEW clean_{record_type} AS SELECT * FROM _clean_{record_type}")
    # a version number is each table's own: with one, the clean tables alone are exact
    over_posts = profile == "standard" and not isinstance(as_of, int)
    posts = open_table(lake, POSTS, as_of) if over_posts else None
    any_newer = False
    if posts is not None:
        _register_posts(con, lake, posts)
        newer, _ = newer_records(lake, watermark(posts), as_of)
        for record_type in RECORD_TYPES:
            added = newer.get(record_type)
            con.register(f"new_{record_type}", _empty(record_type) if added is None else added)
        any_newer = any(_holds_files(added) for added in newer.values())
    con.execute(staging_sql(profile, over_posts=posts is not None, any_newer=any_newer))
    return con


def _holds_files(data: pads.Dataset | pa.Table) -> bool:
    """Whether newer records (batch/posts_table.newer_records) hold anything."""
    if isinstance(data, pads.FileSystemDataset):
        return bool(data.files)
    return bool(data.count_rows() if isinstance(data, pads.Dataset) else data.num_rows)


def _register_posts(con: duckdb.DuckDBPyConnection, lake: Lake, posts: DeltaTable) -> None:
    """``posts``: the snapshot's files read by DuckDB's own Parquet reader where it may read
    them (shared/lake_tables.local_parquet_files), the Arrow dataset otherwise."""
    files = local_parquet_files(lake, posts)
    if files is None:
        con.register("posts", posts.to_pyarrow_dataset())
        return
    listed = ", ".join(map(_literal, files))
    con.execute(f"CREATE VIEW posts AS SELECT * FROM read_parquet([{listed}], union_by_name=true)")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _empty(record_type: RecordType) -> pa.Table:
    """A clean table not written yet reads as empty: answers are empty, not errors."""
    return CLEAN_SCHEMAS[record_type].empty_table()


# Text columns of few distinct values: the working set holds them as ENUMs, so the questions
# group by a small integer, not a string (the nine over 10 M posts in memory: 2.2 s → 1.0 s).
# Their values (None: read from the data) in sorted order: an ENUM sorts by position, so ORDER
# BY reads as over the text.
ENUM_COLUMNS: dict[str, tuple[str, ...] | None] = {
    "category": None,
    "country": None,
    "age_group": AGE_GROUP_LABELS,
}


def materialise_working_set(con: duckdb.DuckDBPyConnection) -> None:
    """Replaces the views the questions read by tables of what they select (the working set),
    so that several questions deduplicate and join the lake once, not once each."""
    over_posts = bool(
        con.execute("SELECT 1 FROM duckdb_views() WHERE view_name = 'current_posts'").fetchall()
    )
    for name, columns in working_set(over_posts):
        selected = ", ".join(_selection(con, name, columns))
        con.execute(f"CREATE TABLE _working AS SELECT {selected} FROM {name}")
        con.execute(f"DROP VIEW {name}")
        con.execute(f"ALTER TABLE _working RENAME TO {name}")


def _selection(
    con: duckdb.DuckDBPyConnection, name: str, columns: tuple[str, ...] | None
) -> list[str]:
    """What the working set selects of view ``name``: its ``columns`` (None: all), those of
    :data:`ENUM_COLUMNS` still text cast to an ENUM of their values (a type made here)."""
    described = con.execute(f"DESCRIBE SELECT {', '.join(columns or ('*',))} FROM {name}")
    selected = []
    for column, column_type, *_ in described.fetchall():
        if column not in ENUM_COLUMNS or column_type != "VARCHAR":
            selected.append(column)
            continue
        values, known = f"{name}_{column}", ENUM_COLUMNS[column]
        if known is not None:
            con.execute(f"CREATE TYPE {values} AS ENUM ({', '.join(map(_literal, known))})")
        else:
            over_posts = name == "current_posts"
            source = values_sql(column) if over_posts else f"SELECT {column} FROM {name}"
            con.execute(
                f"CREATE TYPE {values} AS ENUM (SELECT DISTINCT {column} FROM ({source}) "
                f"WHERE {column} IS NOT NULL ORDER BY {column})"
            )
        selected.append(f"CAST({column} AS {values}) AS {column}")
    return selected


def run_questions(
    lake: Lake, names: list[str], profile: Profile = "standard", as_of: AsOf | None = None
) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    """Column names and rows of each question's answer, over one connection."""
    unknown = [name for name in names if name not in QUESTIONS]
    if unknown:
        raise KeyError(f"unknown question {unknown[0]!r}; known: {', '.join(QUESTIONS)}")
    con = connect(lake, profile, as_of)
    try:
        if len(names) > 1:
            materialise_working_set(con)
        answers = {}
        for name in names:
            result = con.execute(QUESTIONS[name].sql())
            answers[name] = ([d[0] for d in result.description], result.fetchall())
        return answers
    finally:
        con.close()


Format = Literal["table", "csv", "json"]
FORMATS: tuple[Format, ...] = get_args(Format)


def render(columns: list[str], rows: list[tuple[Any, ...]], fmt: Format) -> str:
    """Rows as a pretty table, CSV or JSON (a list of objects)."""
    if fmt == "json":
        return json.dumps(
            [dict(zip(columns, row, strict=True)) for row in rows], default=str, indent=2
        )
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
        return out.getvalue()
    if fmt != "table":
        raise ValueError(f"unknown format {fmt!r}: table, csv or json")
    cells = [columns] + [["" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    body = [
        line,
        "| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)) + " |",
        line,
    ]
    body += [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
        for r in cells[1:]
    ]
    body.append(line)
    return "\n".join(body)
