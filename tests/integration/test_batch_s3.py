"""The batch queries over an s3:// lake on the real S3 server: the reference tables imported
there give the same nine answers as on a file:// lake (no DuckDB extension downloaded)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from batch.config import BatchSettings
from batch.lake_import import import_file
from batch.query import run_questions
from batch.questions import QUESTIONS
from shared.lake import open_lake
from shared.topics import RECORD_TYPES
from tests.servers import S3Server

pytestmark = pytest.mark.integration


def test_the_nine_questions_on_s3_equal_those_on_a_local_lake(
    s3_server: S3Server, s3_bucket: str, shared_data: Path, tmp_path: Path
) -> None:
    s3 = BatchSettings(
        lake_url=f"s3://{s3_bucket}/lake",
        s3_endpoint_url=s3_server.endpoint,
        s3_access_key_id=SecretStr(s3_server.access_key),
        s3_secret_access_key=SecretStr(s3_server.secret_key),
    ).open_lake()
    local = open_lake(f"file://{tmp_path}/lake")
    for lake in (s3, local):
        for record_type in RECORD_TYPES:
            source = shared_data / "arekzajac_39677f2" / f"{record_type}_clean.csv"
            import_file(lake, "clean", record_type, source)
    names = list(QUESTIONS)
    for semantics in ("legacy", "default"):
        on_s3 = run_questions(s3, names, semantics)
        assert on_s3 == run_questions(local, names, semantics)
        assert len(on_s3["most-popular-category-per-country"][1]) > 300
