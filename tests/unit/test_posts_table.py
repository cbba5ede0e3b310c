"""The ``posts`` table (batch/posts_table.py): the standard profile's answers are the same
whether the queries read every clean record, a fresh ``posts`` table, or a stale one plus the
records added since; a refresh reads only what was added; time travel answers as the lake was.
And the lake's upkeep: compaction leaves few files and the same rows, vacuum removes what it
replaced, migration turns a Parquet lake into the tables once."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batch.compaction import compact, vacuum
from batch.migration import migrate
from batch.posts_table import POSTS, refresh, watermark
from batch.query import run_questions
from batch.questions import QUESTIONS
from services.s3_sink.tables import Columns, clean_table
from shared.lake import Lake, open_lake, table_path
from shared.lake_tables import (
    NotMigrated,
    append,
    local_parquet_files,
    open_table,
    require_migrated,
    sink_app_id,
    with_date,
)
from shared.topics import RECORD_TYPES
from tests.posts_stream import posts_stream, write_stream

Answers = dict[str, tuple[list[str], list[Any]]]
DAY = dt.date(2026, 1, 1)


def _answers(lake: Lake) -> Answers:
    return run_questions(lake, list(QUESTIONS), "standard")


def test_answers_do_not_depend_on_how_fresh_posts_is(tmp_path: Path) -> None:
    stream = posts_stream(share=0.5)
    cut = int(len(stream) * 0.7)  # the later part holds repeats and changed re-posts
    plain, with_posts = open_lake(f"file://{tmp_path}/plain"), open_lake(f"file://{tmp_path}/p")
    for lake in (plain, with_posts):
        write_stream(lake, stream[:cut], 0)
    refreshed = refresh(with_posts, report=lambda line: None)
    assert refreshed.version == 0 and refreshed.records == cut
    assert _answers(with_posts) == _answers(plain)

    for lake in (plain, with_posts):
        write_stream(lake, stream[cut:], cut)
    expected = _answers(plain)
    stale = _answers(with_posts)  # posts covers 70%: the rest comes from the clean tables
    assert stale == expected
    again = refresh(with_posts, report=lambda line: None)
    assert again.records == len(stream) - cut, "a refresh reads only what was added"
    assert again.posts_changed > 0
    assert _answers(with_posts) == expected
    posts = open_table(with_posts, POSTS)
    assert posts is not None
    current = {t: open_table(with_posts, table_path("clean", t)) for t in RECORD_TYPES}
    assert watermark(posts) == {
        table_path("clean", t): table.version() for t, table in current.items() if table
    }, "the watermark is the clean tables' versions it read"
    assert refresh(with_posts, report=lambda line: None).version is None  # nothing new


def test_the_working_set_over_posts_answers_as_the_views_do(tmp_path: Path) -> None:
    """Several questions read current_posts built once (its text columns as ENUMs, in DuckDB);
    one question reads the views: the same rows, in the same order."""
    stream = posts_stream(share=0.5)
    cut = int(len(stream) * 0.7)
    lake = open_lake(f"file://{tmp_path}")
    write_stream(lake, stream[:cut], 0)
    refresh(lake, report=lambda line: None)
    write_stream(lake, stream[cut:], cut)  # newer than the posts table: read beside it
    together = _answers(lake)
    for name in QUESTIONS:
        alone = run_questions(lake, [name], "standard")[name]
        assert together[name] == alone, name
        assert alone[1], f"{name}: no rows"


def test_duckdb_reads_local_posts_files_as_parquet_and_anything_else_as_a_dataset(
    tmp_path: Path,
) -> None:
    lake = open_lake(f"file://{tmp_path}")
    write_stream(lake, posts_stream(share=0.5), 0)
    refresh(lake, report=lambda line: None)
    posts = open_table(lake, POSTS)
    assert posts is not None
    files = local_parquet_files(lake, posts)
    assert files and all(Path(path).is_file() for path in files)
    assert sum(pq.ParquetFile(path).metadata.num_rows for path in files) == posts.count()
    clean = open_table(lake, table_path("clean", "pin"))
    assert clean is not None and local_parquet_files(lake, clean) is None, "partitioned by date"
    on_s3 = Lake(url="s3://bucket/lake", fs=lake.fs, root="bucket/lake")
    assert local_parquet_files(on_s3, posts) is None


def test_time_travel_answers_as_the_lake_was(tmp_path: Path) -> None:
    stream = posts_stream(share=0.3)
    cut = len(stream) // 2
    lake = open_lake(f"file://{tmp_path}/lake")
    write_stream(lake, stream[:cut], 0)
    refresh(lake, report=lambda line: None)
    before = _answers(lake)
    posts = open_table(lake, POSTS)  # refreshed after the first half's every commit
    assert posts is not None
    moment = dt.datetime.fromtimestamp(posts.history(1)[0]["timestamp"] / 1000, dt.UTC)
    write_stream(lake, stream[cut:], cut)
    refresh(lake, report=lambda line: None)
    assert _answers(lake) != before
    as_of_version = run_questions(lake, list(QUESTIONS), "standard", as_of=0)
    as_of_time = run_questions(
        lake, list(QUESTIONS), "standard", as_of=moment + dt.timedelta(milliseconds=1)
    )
    assert as_of_version == before
    assert as_of_time == before
    long_ago = dt.datetime(2001, 1, 1, tzinfo=dt.UTC)  # before any table existed: nothing
    assert run_questions(lake, ["posts-per-country"], as_of=long_ago)["posts-per-country"][1] == []


def test_compaction_leaves_few_files_and_the_same_rows_and_vacuum_removes_the_rest(
    tmp_path: Path,
) -> None:
    lake = open_lake(f"file://{tmp_path}/lake")
    relative = table_path("clean", "geo")
    record = {"ind": 0, "country": "Aruba", "coordinates": [1.0, 2.0], "timestamp": None}
    for n in range(200):  # 200 commits of one small file each
        columns = Columns()
        columns.add(None, orjson.dumps({**record, "ind": n}), n, 1_767_225_600_000)
        table, _ = clean_table("geo", "pinpipe.clean.geo", 0, columns)
        append(lake, relative, with_date(table, DAY))
    geo = open_table(lake, relative)
    assert geo is not None and len(geo.file_uris()) == 200
    rows = geo.to_pyarrow_table().sort_by("ind")
    (done,) = compact(lake, tables=(relative,), report=lambda line: None)
    assert (done.files_before, done.files_after) == (200, 1)
    geo = open_table(lake, relative)
    assert geo is not None
    assert geo.to_pyarrow_table().sort_by("ind").equals(rows)
    data_files = tmp_path / "lake" / "clean" / "geo"
    assert len(list(data_files.glob("date=*/*.parquet"))) == 201  # kept until a vacuum
    (vacuumed,) = vacuum(lake, dt.timedelta(0), tables=(relative,), report=lambda line: None)
    assert vacuumed.files_deleted == 200
    assert len(list(data_files.glob("date=*/*.parquet"))) == 1
    geo = open_table(lake, relative)
    assert geo is not None and geo.to_pyarrow_table().sort_by("ind").equals(rows)


def _legacy_lake(root: Path) -> None:
    """Two files of the layout before Delta, the sink's names: one partition, offsets 0-9."""
    record = {"ind": 1, "country": "Aruba", "coordinates": [1.0, 2.0], "timestamp": None}
    for start in (0, 5):
        columns = Columns()
        for offset in range(start, start + 5):
            columns.add(None, orjson.dumps({**record, "ind": offset}), offset, 1_767_225_600_000)
        table, _ = clean_table("geo", "pinpipe.clean.geo", 0, columns)
        folder = root / "clean" / "geo" / "date=2026-01-01"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, folder / f"pinpipe.clean.geo+0+{start:020d}.parquet")


def test_migration_makes_the_tables_once_and_records_the_sink_positions(tmp_path: Path) -> None:
    _legacy_lake(tmp_path / "lake")
    lake = open_lake(f"file://{tmp_path}/lake")
    with pytest.raises(NotMigrated, match="pinpipe lake migrate"):
        require_migrated(lake)
    with pytest.raises(NotMigrated):
        _answers(lake)
    (done,) = migrate(lake, "group", report=lambda line: None)
    assert (done.table, done.converted_files, done.positions_recorded) == ("clean/geo", 2, 1)
    require_migrated(lake)
    geo = open_table(lake, "clean/geo")
    assert geo is not None
    assert geo.transaction_version(sink_app_id("group", "pinpipe.clean.geo", 0)) == 10
    assert sorted(geo.to_pyarrow_table().column("ind").to_pylist()) == list(range(10))
    assert _answers(lake)["posts-per-country"][1] == [("Aruba", 10)]  # the queries read them
    version = geo.version()
    (again,) = migrate(lake, "group", report=lambda line: None)
    assert (again.converted_files, again.positions_recorded) == (0, 0)
    geo = open_table(lake, "clean/geo")
    assert geo is not None and geo.version() == version, "a second migration changed the table"
    assert pa.table(geo.get_add_actions(flatten=True)).num_rows == 2  # the files, not copies
