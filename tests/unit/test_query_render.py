from __future__ import annotations

import json

import pytest

from batch.query import render

COLUMNS = ["country", "post_count"]
ROWS = [("Albania", 3), (None, 1)]


def test_table() -> None:
    text = render(COLUMNS, ROWS, "table")
    lines = text.splitlines()
    assert lines[1] == "| country | post_count |"
    assert lines[3] == "| Albania | 3          |"
    assert lines[4] == "|         | 1          |"


def test_csv_and_json() -> None:
    assert render(COLUMNS, ROWS, "csv") == "country,post_count\nAlbania,3\n,1\n"
    assert json.loads(render(COLUMNS, ROWS, "json")) == [
        {"country": "Albania", "post_count": 3},
        {"country": None, "post_count": 1},
    ]


def test_unknown_format() -> None:
    with pytest.raises(ValueError, match="unknown format"):
        render(COLUMNS, ROWS, "xml")  # type: ignore[arg-type]  # refused at run time too
