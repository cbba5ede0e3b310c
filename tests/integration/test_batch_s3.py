"""The batch queries over an s3:// lake on the real S3 server: the reference tables imported
there give the same nine answers as on a file:// lake, by DuckDB (no extension downloaded at
run time) and by Spark SQL (s3a:// through hadoop-aws and delta-spark from Maven Central); a
backfill between s3:// lakes writes the rows it writes on file://."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from pydantic import SecretStr

from batch.backfill import run_backfill
from batch.config import BatchSettings
from batch.lake_import import import_file
from batch.query import run_questions
from batch.questions import QUESTIONS
from batch.spark import run_questions_spark
from shared.lake import Lake, open_lake
from shared.topics import RECORD_TYPES, RecordType
from tests.integration.test_backfill import _clean_tables, _write_raw_zone
from tests.servers import S3Server

pytestmark = pytest.mark.integration


def _settings(s3_server: S3Server, bucket: str) -> BatchSettings:
    return BatchSettings(
        lake_url=f"s3://{bucket}/lake",
        s3_endpoint_url=s3_server.endpoint,
        s3_access_key_id=SecretStr(s3_server.access_key),
        s3_secret_access_key=SecretStr(s3_server.secret_key),
    )


def _import_reference(lake: Lake, shared_data: Path) -> None:
    for record_type in RECORD_TYPES:
        source = shared_data / "arekzajac_39677f2" / f"{record_type}_clean.csv"
        import_file(lake, "clean", record_type, source)


def test_the_nine_questions_on_s3_equal_those_on_a_local_lake(
    s3_server: S3Server, s3_bucket: str, shared_data: Path, tmp_path: Path
) -> None:
    s3 = _settings(s3_server, s3_bucket).open_lake()
    local = open_lake(f"file://{tmp_path}/lake")
    for lake in (s3, local):
        _import_reference(lake, shared_data)
    names = list(QUESTIONS)
    for profile in ("legacy", "standard"):
        on_s3 = run_questions(s3, names, profile)
        assert on_s3 == run_questions(local, names, profile)
        assert len(on_s3["most-popular-category-per-country"][1]) > 300


def test_spark_reads_an_s3_lake_through_s3a(
    s3_server: S3Server, s3_bucket: str, shared_data: Path, tmp_path: Path
) -> None:
    settings = _settings(s3_server, s3_bucket)
    s3, local = settings.open_lake(), open_lake(f"file://{tmp_path}/lake")
    for lake in (s3, local):
        _import_reference(lake, shared_data)
    names = list(QUESTIONS)
    on_s3 = run_questions_spark(s3, names, "standard", settings=settings)
    by_duckdb = run_questions(local, names, "standard")
    for name in names:
        assert on_s3[name][0] == by_duckdb[name][0], name
        assert sorted(on_s3[name][1]) == sorted(by_duckdb[name][1]), name
    assert len(on_s3["most-popular-category-per-country"][1]) > 300


def test_a_backfill_on_s3_writes_what_it_writes_on_a_local_lake(
    s3_server: S3Server, s3_bucket: str, shared_data: Path, tmp_path: Path
) -> None:
    settings = _settings(s3_server, s3_bucket)
    lakes = {"s3": settings.open_lake(), "local": open_lake(f"file://{tmp_path}/lake")}
    written: dict[str, dict[RecordType, pa.Table]] = {}
    for name, lake in lakes.items():
        _write_raw_zone(lake, shared_data)
        results = run_backfill(settings, lake.url, f"{lake.url}/out", None, None, "standard")
        assert sum(r.rows_out for r in results) > 1000
        written[name] = _clean_tables(settings.open_lake(f"{lake.url}/out"))
    assert sorted(written["s3"]) == sorted(written["local"]) == sorted(RECORD_TYPES)
    assert all(written["s3"][t].equals(written["local"][t]) for t in written["local"])
