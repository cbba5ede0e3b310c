"""``pinpipe backfill`` on Spark (local): a raw zone of real sample rows (and a few bad ones)
re-cleaned into clean Delta tables gives, row for row, what the stream path's cleaning gives for
the same records; a re-run writes the same rows; the date range is honoured."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from batch.backfill import run_backfill
from batch.config import BatchSettings
from services.cleaner.processing import Cleaned, process
from services.s3_sink.tables import Columns, raw_table
from shared.lake import Lake, open_lake, table_path
from shared.lake_schema import CLEAN_RECORD_SCHEMAS, clean_row
from shared.lake_tables import append, open_table, with_date
from shared.topics import RECORD_TYPES, RecordType

pytestmark = pytest.mark.integration
REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_FILES = {"pin": "pinterest_data", "geo": "geolocation_data", "user": "user_data"}
BAD = [b"{not json", b"[1, 2]", b'{"first_name": "no ind"}']
DAYS = (date(2026, 1, 1), date(2026, 1, 2))


def _write_raw_zone(lake: Lake, shared_data: Path) -> dict[tuple[str, int, int], bytes]:
    """Two commits to each raw table (one per day), the sample split between them, bad values
    inside; returns every raw value by (topic, partition, offset)."""
    values: dict[tuple[str, int, int], bytes] = {}
    for record_type in RECORD_TYPES:
        path = shared_data / "raw_union" / f"{SAMPLE_FILES[record_type]}.jsonl"
        lines = [line.encode() for line in path.read_text().splitlines() if line.strip()]
        lines[10:10] = BAD
        topic = f"bf.{record_type}"
        half = len(lines) // 2
        for day, (start, chunk) in zip(
            DAYS, ((0, lines[:half]), (half, lines[half:])), strict=True
        ):
            columns = Columns()
            for i, value in enumerate(chunk):
                columns.add(None, value, start + i, 1_767_225_600_000)
                values[(topic, 0, start + i)] = value
            append(
                lake, table_path("raw", record_type), with_date(raw_table(topic, 0, columns), day)
            )
    return values


def _stream_path(record_type: RecordType, key: tuple[str, int, int], value: bytes) -> Any:
    result = process(key[0], key[1], key[2], value, 1 << 20)
    return clean_row(record_type, result.value) if isinstance(result, Cleaned) else None


def _clean_tables(lake: Lake) -> dict[RecordType, pa.Table]:
    """Each clean table's rows, in offset order."""
    tables = {}
    for record_type in RECORD_TYPES:
        table = open_table(lake, table_path("clean", record_type))
        if table is not None:
            tables[record_type] = table.to_pyarrow_table().sort_by(
                [("_topic", "ascending"), ("_offset", "ascending")]
            )
    return tables


def test_backfill_equals_the_stream_path_and_is_idempotent(
    shared_data: Path, tmp_path: Path
) -> None:
    source = open_lake(f"file://{tmp_path}/source")
    values = _write_raw_zone(source, shared_data)
    out_url = f"file://{tmp_path}/out"
    settings = BatchSettings(spark_shuffle_partitions=2)
    results = run_backfill(settings, source.url, out_url, None, None, "standard")
    assert [r.record_type for r in results] == list(RECORD_TYPES)
    assert sum(r.rows_in for r in results) == len(values)
    rejected: Counter[str] = Counter()
    for r in results:
        rejected.update(r.rejected)
    assert rejected == {"not_json": 3, "not_an_object": 3, "missing_ind": 3}

    out = open_lake(out_url)
    tables = _clean_tables(out)
    assert sorted(tables) == sorted(RECORD_TYPES)
    checked = 0
    for record_type, table in tables.items():
        record_columns = CLEAN_RECORD_SCHEMAS[record_type].names
        for row in table.to_pylist():
            key = (row["_topic"], row["_partition"], row["_offset"])
            expected = _stream_path(record_type, key, values[key])
            assert {c: row[c] for c in record_columns} == expected, key
            checked += 1
    assert checked == len(values) - 9  # every good record, once

    again = run_backfill(settings, source.url, out_url, None, None, "standard")
    assert [r.rows_out for r in again] == [r.rows_out for r in results]
    rerun = _clean_tables(out)
    assert all(rerun[t].equals(tables[t]) for t in tables), "a re-run changed the rows"
    versions = {t: open_table(out, table_path("clean", t)) for t in RECORD_TYPES}
    assert all(v is not None and v.version() == 1 for v in versions.values())


def test_the_command_backfills_a_date_range(shared_data: Path, tmp_path: Path) -> None:
    source = open_lake(f"file://{tmp_path}/source")
    _write_raw_zone(source, shared_data)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli.main",
            "backfill",
            "--lake",
            source.url,
            "--since",
            "2026-01-02",
            "--until",
            "2026-01-02",
            "--profile",
            "legacy",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "(legacy profile, date >= '2026-01-02' AND date <= '2026-01-02')" in result.stdout
    assert "done: 3 tables" in result.stdout
    tables = _clean_tables(source)
    assert sorted(tables) == sorted(RECORD_TYPES)
    assert all(set(t.column("date").to_pylist()) == {"2026-01-02"} for t in tables.values())


def test_a_bad_date_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli.main",
            "backfill",
            "--lake",
            f"file://{tmp_path}",
            "--since",
            "yesterday",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "dates are YYYY-MM-DD" in result.stderr
