"""``pinpipe backfill`` on Spark (local): a raw zone of real sample rows (and a few bad ones)
re-cleaned into a clean zone gives, row for row, what the stream path's cleaning gives for the
same records; a re-run writes the same files; the date range is honoured."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from batch.backfill import run_backfill
from batch.config import BatchSettings
from services.cleaner.processing import Cleaned, process
from services.s3_sink.tables import Columns, raw_table
from shared.lake import Lake, open_lake, relative_path
from shared.lake_schema import CLEAN_RECORD_SCHEMAS, clean_row
from shared.lake_writer import parquet_bytes, write_durably
from shared.topics import RECORD_TYPES, RecordType

pytestmark = pytest.mark.integration
REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_FILES = {"pin": "pinterest_data", "geo": "geolocation_data", "user": "user_data"}
BAD = [b"{not json", b"[1, 2]", b'{"first_name": "no ind"}']
DAYS = (date(2026, 1, 1), date(2026, 1, 2))


def _write_raw_zone(lake: Lake, shared_data: Path) -> dict[tuple[str, int, int], bytes]:
    """Two raw files per type (one per day), the sample split between them, bad values
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
            table = raw_table(topic, 0, columns)
            relative = relative_path("raw", record_type, day, topic, 0, start)
            write_durably(lake, relative, parquet_bytes(table, "zstd"))
    return values


def _stream_path(record_type: RecordType, key: tuple[str, int, int], value: bytes) -> Any:
    result = process(key[0], key[1], key[2], value, 1 << 20)
    return clean_row(record_type, result.value) if isinstance(result, Cleaned) else None


def _clean_files(lake: Lake) -> dict[str, Any]:
    return {
        path: pq.read_table(path)
        for path in sorted(lake.fs.glob(lake.path("clean/*/date=*/*.parquet")))
    }


def test_backfill_equals_the_stream_path_and_is_idempotent(
    shared_data: Path, tmp_path: Path
) -> None:
    source = open_lake(f"file://{tmp_path}/source")
    values = _write_raw_zone(source, shared_data)
    out_url = f"file://{tmp_path}/out"
    settings = BatchSettings(spark_shuffle_partitions=2)
    results = run_backfill(settings, source.url, out_url, None, None, "standard")
    assert len(results) == 6
    assert sum(r.rows_in for r in results) == len(values)
    rejected: Counter[str] = Counter()
    for r in results:
        rejected.update(r.rejected)
    assert rejected == {"not_json": 3, "not_an_object": 3, "missing_ind": 3}

    out = open_lake(out_url)
    files = _clean_files(out)
    assert len(files) == 6
    checked = 0
    for path, table in files.items():
        record_type: RecordType = path.split("/clean/")[1].split("/")[0]  # type: ignore[assignment]
        record_columns = CLEAN_RECORD_SCHEMAS[record_type].names
        for row in table.to_pylist():
            key = (row["_topic"], row["_partition"], row["_offset"])
            expected = _stream_path(record_type, key, values[key])
            assert {c: row[c] for c in record_columns} == expected, key
            checked += 1
    assert checked == len(values) - 9  # every good record, once

    again = run_backfill(settings, source.url, out_url, None, None, "standard")
    assert [r.rows_out for r in again] == [r.rows_out for r in results]
    rerun = _clean_files(out)
    assert rerun.keys() == files.keys()
    assert all(rerun[p].equals(files[p]) for p in files), "a re-run changed a file"


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
    assert "backfilling 3 raw files (legacy profile)" in result.stdout
    assert "done: 3 files" in result.stdout
    written = sorted(source.fs.glob(source.path("clean/*/date=*/*.parquet")))
    assert len(written) == 3 and all("/date=2026-01-02/" in p for p in written)


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
