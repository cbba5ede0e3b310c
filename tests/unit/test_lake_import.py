"""``pinpipe lake import``: CSV and JSON lines into the lake's Delta tables, clear errors for
files that do not fit, and a second import of the same file replacing the first."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pytest

from batch.lake_import import import_file
from shared.lake import Lake, open_lake
from shared.lake_schema import CLEAN_SCHEMAS, RAW_SCHEMA
from shared.lake_tables import PARTITION_COLUMN, open_table

REPO_ROOT = Path(__file__).resolve().parents[2]


def _rows(lake: Lake, relative: str) -> pa.Table:
    """The table's rows in offset order, without its partition column (checked apart)."""
    table = open_table(lake, relative)
    assert table is not None
    data = table.to_pyarrow_table().sort_by("_offset")
    assert len(set(data.column(PARTITION_COLUMN).to_pylist())) == 1  # the day of the import
    return data.drop_columns([PARTITION_COLUMN])


def test_a_reference_style_csv_becomes_typed_clean_rows(tmp_path: Path) -> None:
    source = tmp_path / "geo.csv"
    source.write_text(
        "ind,country,coordinates,timestamp\n"
        '7,Aruba,"List(-42.0773, -163.698)",2018-01-10T04:28:20.000+0100\n'
        '8,,"[1.5, 2]",2019-02-01T00:00:00\n'
    )
    lake = open_lake(f"file://{tmp_path}/lake")
    imported = import_file(lake, "clean", "geo", source)
    table = _rows(lake, "clean/geo")
    assert table.schema.remove_metadata() == CLEAN_SCHEMAS["geo"]
    first, second = table.to_pylist()
    assert first["coordinates"] == [-42.0773, -163.698]
    assert first["timestamp"] == datetime(2018, 1, 10, 3, 28, 20)  # the offset applied
    assert second["country"] is None and second["coordinates"] == [1.5, 2.0]
    assert [first["_offset"], second["_offset"]] == [0, 1]
    assert set(table.column("_topic").to_pylist()) == {"import.geo"}
    assert imported.table == f"{tmp_path}/lake/clean/geo"
    again = import_file(lake, "clean", "geo", source)
    assert again.version == imported.version + 1  # one commit
    replaced = _rows(lake, "clean/geo")  # a re-import replaces its rows: the same, once
    assert replaced.drop_columns(["_ingested_at"]).equals(table.drop_columns(["_ingested_at"]))


def test_clean_json_lines_and_raw_json_lines(tmp_path: Path) -> None:
    clean = tmp_path / "users.jsonl"
    clean.write_text('{"ind": 1, "user_name": "A B", "age": 30, "date_joined": null}\n')
    raw = tmp_path / "raw_users.jsonl"
    raw.write_text('{"ind": 1, "first_name": "A"}\n\n{"not": "checked"}\n')
    lake = open_lake(f"file://{tmp_path}/lake")
    assert import_file(lake, "clean", "user", clean).rows == 1
    import_file(lake, "raw", "user", raw)
    table = _rows(lake, "raw/user")
    assert table.schema.remove_metadata() == RAW_SCHEMA
    assert table.column("value").to_pylist() == [
        b'{"ind": 1, "first_name": "A"}',
        b'{"not": "checked"}',
    ]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.csv", "ind,age\nx,1\n", "column ind"),
        ("noind.csv", "ind,age\n,30\n", "no ind"),
        ("bad.jsonl", '{"ind": "seven"}\n', "not clean user records"),
        ("bad.txt", "whatever", ".csv or .jsonl"),
        ("ragged.csv", "ind,age\n1,2,3\n", "not a CSV"),
    ],
)
def test_files_that_do_not_fit_say_why(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    source = tmp_path / name
    source.write_text(content)
    with pytest.raises(ValueError, match=message):
        import_file(open_lake(f"file://{tmp_path}/lake"), "clean", "user", source)


def test_the_command_reports_a_bad_file_on_stderr_with_exit_code_2(tmp_path: Path) -> None:
    source = tmp_path / "bad.csv"
    source.write_text("ind,age\nx,1\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli.main",
            "lake",
            "import",
            "--type",
            "user",
            str(source),
            "--lake",
            f"file://{tmp_path}/lake",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "pinpipe lake import:" in result.stderr and "column ind" in result.stderr
