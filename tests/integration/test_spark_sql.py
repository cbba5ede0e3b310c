"""Spark SQL answers the nine questions exactly as DuckDB does, from the same SQL files over
the same Delta tables (the reference tables imported into a lake), in both profiles, and over a
posts table with records added since its refresh."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import pytest

from batch.lake_import import import_file
from batch.posts_table import refresh
from batch.query import run_questions
from batch.questions import QUESTIONS
from batch.spark import run_questions_spark
from shared.lake import Lake, open_lake
from shared.profiles import Profile
from shared.topics import RECORD_TYPES
from tests.posts_stream import posts_stream, write_stream

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def lake(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    lake = open_lake(f"file://{tmp_path_factory.mktemp('lake')}")
    for record_type in RECORD_TYPES:
        source = shared_data / "arekzajac_39677f2" / f"{record_type}_clean.csv"
        import_file(lake, "clean", record_type, source)
    return lake


@pytest.mark.parametrize("profile", ["legacy", "standard"])
def test_spark_and_duckdb_agree_on_every_question(lake: Lake, profile: Profile) -> None:
    names = list(QUESTIONS)
    spark = run_questions_spark(lake, names, profile)
    duck = run_questions(lake, names, profile)
    for name in names:
        assert spark[name][0] == duck[name][0], name
        assert sorted(spark[name][1]) == sorted(duck[name][1]), name
        assert spark[name][1], f"{name}: no rows"


def test_spark_reads_posts_and_the_records_added_since_as_duckdb_does(tmp_path: Path) -> None:
    """The standard profile over a posts table refreshed from part of the stream, the rest of
    the stream added after it: the same answers from both engines, and from the clean tables
    alone."""
    stream = posts_stream(share=0.3)
    cut = len(stream) // 2
    lake, plain = open_lake(f"file://{tmp_path}/lake"), open_lake(f"file://{tmp_path}/plain")
    for target in (lake, plain):
        write_stream(target, stream[:cut], 0)
    refresh(lake, report=lambda line: None)
    for target in (lake, plain):
        write_stream(target, stream[cut:], cut)
    names = list(QUESTIONS)
    spark, duck = run_questions_spark(lake, names), run_questions(lake, names)
    assert duck == run_questions(plain, names)
    for name in names:
        assert spark[name][0] == duck[name][0], name
        assert sorted(spark[name][1], key=repr) == sorted(duck[name][1], key=repr), name


def test_an_empty_lake_gives_empty_answers(tmp_path: Path) -> None:
    answers = run_questions_spark(open_lake(f"file://{tmp_path}"), ["posts-per-country"])
    assert answers["posts-per-country"] == (["country", "post_count"], [])


def test_the_command_takes_the_spark_engine(lake: Lake) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli.main",
            "query",
            "country-with-most-followed-user",
            "--engine",
            "spark",
            "--profile",
            "legacy",
            "--format",
            "csv",
            "--lake",
            lake.url,
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:3] == [
        "country,follower_count",
        "Palestinian Territory,997",
        "Western Sahara,997",
    ]


def test_query_out_writes_one_csv_per_question_with_no_empty_record(
    lake: Lake, tmp_path: Path
) -> None:
    """The batch-report CronJob's files: a header and one record per answer row (the files once
    ended in a blank line, which a CSV reader takes for one more, empty, record)."""
    command = ["query", "all", "--format", "csv", "--lake", lake.url, "--out", str(tmp_path)]
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", *command],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    answers = run_questions(lake, list(QUESTIONS))
    for name, (columns, rows) in answers.items():
        records = list(csv.reader(io.StringIO((tmp_path / f"{name}.csv").read_text())))
        assert records[0] == columns, name
        assert len(records) == 1 + len(rows) and all(records), name
