"""Runs the analysis questions in DuckDB over the lake's clean zone (``file://`` or ``s3://``).

``s3://`` lakes are read through the lake's fsspec filesystem registered with DuckDB, so no
DuckDB extension is downloaded at run time.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Literal, get_args

import duckdb
import pyarrow as pa

from batch.questions import QUESTIONS, WORKING_SET, staging_sql
from shared.lake import Lake
from shared.lake_schema import CLEAN_SCHEMAS
from shared.profiles import Profile
from shared.topics import RECORD_TYPES


def _sql_string(text: str) -> str:
    return text.replace("'", "''")


def connect(lake: Lake, profile: Profile = "standard") -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with views ``clean_pin|geo|user`` over the lake and the staging
    views (``pins``, ``geos``, ``users``) of ``profile`` (shared/profiles.py)."""
    con = duckdb.connect()
    if lake.is_s3:
        con.register_filesystem(lake.fs)
    for record_type in RECORD_TYPES:
        pattern = lake.zone_glob("clean", record_type)
        fs_pattern = pattern.removeprefix("s3://")
        if lake.fs.glob(fs_pattern):
            source = f"read_parquet('{_sql_string(pattern)}', union_by_name=true)"
            con.execute(f"CREATE VIEW clean_{record_type} AS SELECT * FROM {source}")
        else:  # an empty lake answers with empty results, not an error
            con.register(
                f"_empty_{record_type}", pa.Table.from_pylist([], schema=CLEAN_SCHEMAS[record_type])
            )
            con.execute(f"CREATE VIEW clean_{record_type} AS SELECT * FROM _empty_{record_type}")
    con.execute(staging_sql(profile))
    return con


def materialise_working_set(con: duckdb.DuckDBPyConnection) -> None:
    """Replaces the views the questions read by tables of what they select (WORKING_SET), so
    that several questions deduplicate and join the lake once, not once each."""
    for name, columns in WORKING_SET:
        selected = ", ".join(columns) if columns else "*"
        con.execute(f"CREATE TABLE _working AS SELECT {selected} FROM {name}")
        con.execute(f"DROP VIEW {name}")
        con.execute(f"ALTER TABLE _working RENAME TO {name}")


def run_questions(
    lake: Lake, names: list[str], profile: Profile = "standard"
) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    """Column names and rows of each question's answer, over one connection."""
    unknown = [name for name in names if name not in QUESTIONS]
    if unknown:
        raise KeyError(f"unknown question {unknown[0]!r}; known: {', '.join(QUESTIONS)}")
    con = connect(lake, profile)
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
