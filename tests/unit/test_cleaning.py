from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.emulator.seed import SEED_FILES
from shared.cleaning import BadRecord, clean, parse_follower_count
from shared.models import CLEAN_MODELS

PIN = {
    "index": 7528, "unique_id": "fbe53c66", "title": "No Title Data Available",
    "description": "No description available Story format", "poster_name": "User Info Error",
    "follower_count": "User Info Error", "tag_list": "N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e",
    "is_image_or_video": "multi-video(story page format)", "image_src": "Image src error.",
    "downloaded": 0, "save_location": "Local save in /data/mens-fashion",
    "category": "mens-fashion",
}  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0.0005k", 0),
        ("1.005k", 1_005),
        ("999999999999M", 999_999_999_999_000_000),
        (" 12 k ", 12_000),
        ("12k", 12_000),
        ("2M", 2_000_000),
        ("124", 124),
        ("1.5k", 1_500),
        ("User Info Error", None),
        (None, None),
    ],
)
def test_follower_count_units(raw: str | None, expected: int | None) -> None:
    assert parse_follower_count(raw) == expected


@pytest.mark.parametrize("raw", ["lots", "1234567890123", "1.1234567k", "١٢", "12kk", "-5"])
def test_follower_count_that_is_no_count_is_a_bad_record(raw: str) -> None:
    with pytest.raises(BadRecord) as info:
        parse_follower_count(raw)
    assert info.value.reason == "bad_value"


def test_legacy_keeps_digits_only() -> None:
    assert clean("pin", {**PIN, "follower_count": "124k"}, "legacy")["follower_count"] == 124
    assert clean("pin", {**PIN, "follower_count": "2M"}, "legacy")["follower_count"] == 2
    with pytest.raises(BadRecord):
        clean("pin", {**PIN, "follower_count": "9" * 19}, "legacy")


def test_timestamps_with_an_offset_become_naive_utc() -> None:
    geo = clean("geo", {"ind": 1, "timestamp": "2020-01-01T02:30:00+02:00"})
    assert geo["timestamp"] == "2020-01-01T00:30:00"


def test_pin_placeholders_become_null_and_columns_follow_the_contract() -> None:
    cleaned = clean("pin", PIN)
    assert list(cleaned) == list(CLEAN_MODELS["pin"].model_fields)
    assert cleaned["ind"] == 7528
    for column in (
        "title",
        "description",
        "poster_name",
        "follower_count",
        "tag_list",
        "image_src",
    ):
        assert cleaned[column] is None, column
    assert cleaned["save_location"] == "/data/mens-fashion"
    assert cleaned["category"] == "mens-fashion"


def test_whitespace_is_trimmed() -> None:
    cleaned = clean("pin", {**PIN, "title": "  Cozy cottage \n", "poster_name": "Bored Panda "})
    assert cleaned["title"] == "Cozy cottage"
    assert cleaned["poster_name"] == "Bored Panda"


def test_geo_and_user() -> None:
    geo = clean(
        "geo",
        {
            "ind": 4,
            "timestamp": "2022-07-07T00:18:41",
            "latitude": -88.8,
            "longitude": -170.1,
            "country": "Albania",
        },
    )
    assert geo == {
        "ind": 4,
        "country": "Albania",
        "coordinates": [-88.8, -170.1],
        "timestamp": "2022-07-07T00:18:41",
    }
    CLEAN_MODELS["geo"].model_validate(geo)
    user = clean(
        "user",
        {
            "ind": 4,
            "first_name": "Adam",
            "last_name": "Acosta",
            "age": 20,
            "date_joined": "2015-10-21T21:26:45",
        },
    )
    assert user == {
        "ind": 4,
        "user_name": "Adam Acosta",
        "age": 20,
        "date_joined": "2015-10-21T21:26:45",
    }
    CLEAN_MODELS["user"].model_validate(user)


@pytest.mark.parametrize(
    ("record_type", "raw", "reason"),
    [
        ("pin", [1, 2], "not_an_object"),
        ("pin", {"title": "x"}, "missing_ind"),
        ("geo", {"ind": "four"}, "wrong_type"),
        ("user", {"ind": 1, "age": "old"}, "wrong_type"),
    ],
)
def test_bad_records_say_why(record_type: Any, raw: Any, reason: str) -> None:
    with pytest.raises(BadRecord) as info:
        clean(record_type, raw)
    assert info.value.reason == reason


scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
)
json_values = (
    scalars
    | st.lists(scalars, max_size=3)
    | st.dictionaries(st.text(max_size=4), scalars, max_size=2)
)


@given(
    record_type=st.sampled_from(["pin", "geo", "user"]),
    raw=st.dictionaries(
        st.sampled_from(
            ["index", "ind", "follower_count", "age", "latitude", "timestamp", "title", "country"]
        ),
        json_values,
        max_size=6,
    ),
)
def test_cleaning_raises_nothing_but_bad_record(record_type: Any, raw: dict[str, Any]) -> None:
    try:
        clean(record_type, raw)
    except BadRecord:
        pass


def test_every_real_sample_row_cleans(shared_data: Path) -> None:
    for record_type, name in SEED_FILES.items():
        rows = [json.loads(line) for line in (shared_data / "raw_union" / name).open()]
        assert len(rows) == 2178
        for row in rows:
            CLEAN_MODELS[record_type].model_validate(clean(record_type, row))
