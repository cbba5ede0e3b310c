"""Kafka records → lake tables (services/s3_sink/tables.py): the clean schema checked by
Arrow's JSON reader, bad records set apart with their offsets, metadata columns right."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from services.s3_sink.tables import Columns, clean_table, raw_table
from shared.lake_schema import CLEAN_SCHEMAS, RAW_SCHEMA

STAMP_MS = 1_600_000_000_000


def _user(ind: int) -> bytes:
    return orjson.dumps(
        {"ind": ind, "user_name": "A B", "age": 30, "date_joined": "2016-05-01T10:00:00"}
    )


def _columns(values: list[bytes]) -> Columns:
    columns = Columns()
    for offset, value in enumerate(values):
        columns.add(b"k", value, 100 + offset, STAMP_MS + offset)
    return columns


def test_good_clean_records_become_typed_rows_with_their_metadata() -> None:
    table, unreadable = clean_table("user", "pinpipe.clean.user", 2, _columns([_user(1), _user(2)]))
    assert unreadable == []
    assert table.schema == CLEAN_SCHEMAS["user"]
    first = table.to_pylist()[0]
    assert first["date_joined"] == datetime(2016, 5, 1, 10, 0)
    assert (first["_topic"], first["_partition"], first["_offset"]) == (
        "pinpipe.clean.user",
        2,
        100,
    )
    assert first["_ingested_at"] == datetime.fromtimestamp(STAMP_MS / 1000, UTC)


def test_records_that_fit_no_schema_are_set_apart_with_their_offsets() -> None:
    bad = [b"{", b'{"ind": "x"}', b'{"user_name": "no ind"}', b'{"ind": 3, "extra": 1}', b"", b"[]"]
    values = [_user(1), *bad, _user(2), b'{"ind": 4}\n{"ind": 5}']
    table, unreadable = clean_table("user", "t", 0, _columns(values))
    assert [row["ind"] for row in table.to_pylist()] == [1, 2]
    assert [row["_offset"] for row in table.to_pylist()] == [100, 107]
    assert [u.offset for u in unreadable] == [101, 102, 103, 104, 105, 106, 108]
    assert all(u.error for u in unreadable)


def test_raw_records_keep_key_and_value_as_received() -> None:
    table = raw_table("p.pin", 1, _columns([b"\xff not even utf-8", b"{}"]))
    assert table.schema == RAW_SCHEMA
    assert table.column("value").to_pylist() == [b"\xff not even utf-8", b"{}"]
    assert table.column("_offset").to_pylist() == [100, 101]
