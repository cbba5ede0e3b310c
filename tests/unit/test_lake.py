from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from shared.lake import open_lake, relative_path


def test_layout_of_design() -> None:
    path = relative_path("clean", "geo", date(2026, 1, 2), "pinpipe.clean.geo", 3, 1234)
    assert path == "clean/geo/date=2026-01-02/pinpipe.clean.geo+3+00000000000000001234.parquet"


def test_file_lake(tmp_path: Path) -> None:
    lake = open_lake(f"file://{tmp_path}/lake/")
    assert not lake.is_s3
    assert lake.root == f"{tmp_path}/lake"
    assert (tmp_path / "lake").is_dir()
    assert lake.zone_glob("raw", "pin") == f"{tmp_path}/lake/raw/pin/date=*/*.parquet"


def test_s3_lake_paths() -> None:
    lake = open_lake("s3://bucket/prefix", s3_endpoint_url="http://127.0.0.1:1")
    assert lake.is_s3 and lake.root == "bucket/prefix"
    assert lake.uri("clean/geo/x.parquet") == "s3://bucket/prefix/clean/geo/x.parquet"


def test_unknown_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="file://"):
        open_lake("gs://bucket")
