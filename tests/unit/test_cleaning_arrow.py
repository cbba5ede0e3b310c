"""The vectorised cleaning (``shared.cleaning_arrow``) against the per-record rules
(``shared.cleaning``): the same clean rows and the same rejections, on generated rows of every
kind (placeholders, whitespace, units, digits of other scripts, extremes) and on the real
sample; and cleaning a clean record again changes nothing where that is defined."""

from __future__ import annotations

import json
from datetime import UTC
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from shared.cleaning import (
    FOLLOWERS_PATTERN,
    LEGACY_PLACEHOLDERS,
    PLACEHOLDERS,
    SAVE_LOCATION_PREFIX,
    BadRecord,
    clean,
)
from shared.cleaning_arrow import RAW_ARROW_SCHEMAS, clean_arrow
from shared.lake_schema import CLEAN_RECORD_SCHEMAS, clean_row
from shared.models import RAW_MODELS
from shared.profiles import Profile
from shared.topics import RecordType

SAMPLE_FILES = {"pin": "pinterest_data", "geo": "geolocation_data", "user": "user_data"}

_safe_text = st.text(st.characters(codec="utf-8"), max_size=12)
_padding = st.sampled_from(["", " ", "\t", "\n", "\u00a0", "\u3000", "\x1c", " \r\n"])
_words = st.sampled_from(
    [
        *sorted(
            {p for ps in PLACEHOLDERS.values() for p in ps} | set(LEGACY_PLACEHOLDERS.values())
        ),
        SAVE_LOCATION_PREFIX + "/data/x",
        SAVE_LOCATION_PREFIX,
        "a b",
        "",
        "x" + SAVE_LOCATION_PREFIX,
    ]
)
text_values = st.one_of(
    st.none(),
    _safe_text,
    st.builds(lambda a, w, b: a + w + b, _padding, _words, _padding),
)
follower_values = st.one_of(
    text_values,
    st.from_regex(FOLLOWERS_PATTERN, fullmatch=True),
    st.builds(
        lambda a, n, b: a + n + b,
        _padding,
        st.from_regex(FOLLOWERS_PATTERN, fullmatch=True),
        _padding,
    ),
    st.sampled_from(
        # fullwidth and Arabic-Indic digits are no count (ASCII digits only)
        [
            "\uff11\uff12",
            "\u0661\u0662k",
            "12kk",
            "1.k",
            "9" * 13,
            "9" * 19,
            "9" * 12 + "M",
            "0.0000009M",
        ]
    ),
)
int64s = st.integers(-(2**63), 2**63 - 1)
timestamps = st.one_of(st.none(), st.datetimes(timezones=st.just(UTC)))
coordinates = st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False))

ROWS: dict[RecordType, st.SearchStrategy[dict[str, Any]]] = {
    "pin": st.fixed_dictionaries(
        {
            "index": st.one_of(st.none(), int64s),
            "follower_count": follower_values,
            "downloaded": st.one_of(st.none(), int64s),
            **{
                name: text_values
                for name in (
                    "unique_id",
                    "title",
                    "description",
                    "poster_name",
                    "tag_list",
                    "is_image_or_video",
                    "image_src",
                    "save_location",
                    "category",
                )
            },
        }
    ),
    "geo": st.fixed_dictionaries(
        {
            "ind": st.one_of(st.none(), int64s),
            "timestamp": timestamps,
            "latitude": coordinates,
            "longitude": coordinates,
            "country": text_values,
        }
    ),
    "user": st.fixed_dictionaries(
        {
            "ind": st.one_of(st.none(), int64s),
            "first_name": text_values,
            "last_name": text_values,
            "age": st.one_of(st.none(), int64s),
            "date_joined": timestamps,
        }
    ),
}


def _per_record(
    record_type: RecordType, table: pa.Table, profile: Profile
) -> tuple[pa.Table, list[int], list[int], list[str]]:
    """What the per-record rules make of every row of ``table``."""
    rows, good, bad, reasons = [], [], [], []
    for i, raw in enumerate(table.to_pylist()):
        try:
            cleaned = clean(record_type, raw, profile)
        except BadRecord as exc:
            bad.append(i)
            reasons.append(exc.reason)
            continue
        rows.append(clean_row(record_type, orjson.dumps(cleaned)))
        good.append(i)
    return pa.Table.from_pylist(rows, schema=CLEAN_RECORD_SCHEMAS[record_type]), good, bad, reasons


def _assert_same(record_type: RecordType, table: pa.Table, profile: Profile) -> None:
    vectorised = clean_arrow(record_type, table, profile)
    expected, good, bad, reasons = _per_record(record_type, table, profile)
    assert vectorised.rows.to_pylist() == good
    assert vectorised.rejected_rows.to_pylist() == bad
    assert vectorised.rejected_reasons.to_pylist() == reasons
    assert vectorised.table.schema == expected.schema
    assert vectorised.table.to_pylist() == expected.to_pylist()


@pytest.mark.parametrize("profile", ["standard", "legacy"])
@pytest.mark.parametrize("record_type", ["pin", "geo", "user"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_vectorised_and_per_record_agree(
    record_type: RecordType, profile: Profile, data: st.DataObject
) -> None:
    rows = data.draw(st.lists(ROWS[record_type], max_size=25))
    table = pa.Table.from_pylist(rows, schema=RAW_ARROW_SCHEMAS[record_type])
    _assert_same(record_type, table, profile)


@pytest.mark.parametrize("profile", ["standard", "legacy"])
@pytest.mark.parametrize("record_type", ["pin", "geo", "user"])
def test_vectorised_and_per_record_agree_on_the_real_sample(
    record_type: RecordType, profile: Profile, shared_data: Path
) -> None:
    path = shared_data / "raw_union" / f"{SAMPLE_FILES[record_type]}.jsonl"
    raw = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    # decoded as the JSON decoder of a bulk job would: typed, timestamps as UTC instants
    typed = [RAW_MODELS[record_type].model_validate(r).model_dump() for r in raw]
    table = pa.Table.from_pylist(typed, schema=RAW_ARROW_SCHEMAS[record_type])
    assert table.num_rows > 1000
    _assert_same(record_type, table, profile)


def test_missing_columns_read_as_null_and_missing_ind_is_rejected() -> None:
    table = pa.table({"ind": pa.array([1, None], pa.int64())})
    result = clean_arrow("user", table)
    assert result.table.to_pylist() == [
        {"ind": 1, "user_name": None, "age": None, "date_joined": None}
    ]
    assert result.rejected_reasons.to_pylist() == ["missing_ind"]


def _as_raw(record_type: RecordType, record: dict[str, Any]) -> dict[str, Any]:
    """A clean record put back in its raw shape."""
    if record_type == "pin":
        raw = {k: v for k, v in record.items() if k != "ind"}
        count = record["follower_count"]
        return {
            **raw,
            "index": record["ind"],
            "follower_count": None if count is None else str(count),
        }
    if record_type == "geo":
        latitude, longitude = record["coordinates"]
        return {
            "ind": record["ind"],
            "country": record["country"],
            "latitude": latitude,
            "longitude": longitude,
            "timestamp": record["timestamp"],
        }
    return {
        "ind": record["ind"],
        "first_name": record["user_name"],
        "last_name": None,
        "age": record["age"],
        "date_joined": record["date_joined"],
    }


@pytest.mark.parametrize("record_type", ["pin", "geo", "user"])
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_cleaning_a_clean_record_changes_nothing(
    record_type: RecordType, data: st.DataObject
) -> None:
    raw = data.draw(ROWS[record_type])
    try:
        once = clean(record_type, raw)
    except BadRecord:
        assume(False)
        return
    # Not defined for a save location that starts with the prefix twice (each pass strips one),
    # nor for counts of 10**12 and more: reachable with a unit only, not as plain digits.
    assume(not str(once.get("save_location") or "").startswith(SAVE_LOCATION_PREFIX))
    assume((once.get("follower_count") or 0) < 10**12)
    assert clean(record_type, _as_raw(record_type, once)) == once
