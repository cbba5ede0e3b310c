from __future__ import annotations

from pathlib import Path

import pytest

from shared.lake import ZONE_TABLES, open_lake, table_path


def test_layout_of_design() -> None:
    assert table_path("clean", "geo") == "clean/geo"
    assert ZONE_TABLES == (
        "raw/pin", "raw/geo", "raw/user", "clean/pin", "clean/geo", "clean/user"
    )  # fmt: skip


def test_file_lake(tmp_path: Path) -> None:
    lake = open_lake(f"file://{tmp_path}/lake/")
    assert not lake.is_s3
    assert lake.root == f"{tmp_path}/lake"
    assert (tmp_path / "lake").is_dir()
    assert lake.table_uri("raw/pin") == f"{tmp_path}/lake/raw/pin"
    assert lake.storage_options == {}


def test_s3_lake_paths_and_delta_options() -> None:
    lake = open_lake("s3://bucket/prefix", s3_endpoint_url="http://127.0.0.1:1")
    assert lake.is_s3 and lake.root == "bucket/prefix"
    assert lake.table_uri("clean/geo") == "s3://bucket/prefix/clean/geo"
    assert lake.storage_options["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1"
    assert lake.storage_options["AWS_ALLOW_HTTP"] == "true"
    assert lake.storage_options["AWS_VIRTUAL_HOSTED_STYLE_REQUEST"] == "false"


def test_unknown_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="file://"):
        open_lake("gs://bucket")
