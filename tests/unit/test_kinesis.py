"""Kinesis' shard rules on known vectors (the ranges AWS reports for 2, 3 and 4 shards)."""

from __future__ import annotations

import hashlib
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.ingest_api.kinesis import (
    MAX_HASH_KEY,
    hash_key,
    hash_key_ranges,
    sequence_number,
    shard_for_hash_key,
    shard_id,
)
from tests.sequence_numbers import parse_sequence_number


def test_ranges_as_kinesis_reports_them() -> None:
    two = hash_key_ranges(2)
    assert (two[0].start, two[0].end) == (0, 170141183460469231731687303715884105727)
    assert (two[1].start, two[1].end) == (170141183460469231731687303715884105728, MAX_HASH_KEY)
    three = hash_key_ranges(3)
    assert three[0].end == 113427455640312821154458202477256070484
    assert three[1].start == 113427455640312821154458202477256070485
    assert three[1].end == 226854911280625642308916404954512140969
    assert three[2].end == 340282366920938463463374607431768211455
    assert hash_key_ranges(4)[0].end == 85070591730234615865843651857942052863


@pytest.mark.parametrize("shards", [1, 2, 3, 4, 7, 64])
def test_ranges_cover_the_key_space_without_gaps(shards: int) -> None:
    ranges = hash_key_ranges(shards)
    assert ranges[0].start == 0 and ranges[-1].end == MAX_HASH_KEY
    assert all(a.end + 1 == b.start for a, b in itertools.pairwise(ranges))


@pytest.mark.parametrize(
    ("partition_key", "md5_hex", "shard_of_4"),
    [
        ("a", "0cc175b9c0f1b6a831c399e269772661", 0),
        ("c", "4a8a08f09d37b73795649038408b5f33", 1),
        ("b", "92eb5ffee6ae2fec3ad71c777531578f", 2),
        ("partition-1", hashlib.md5(b"partition-1").hexdigest(), None),
    ],
)
def test_partition_key_md5_picks_the_shard(
    partition_key: str, md5_hex: str, shard_of_4: int | None
) -> None:
    key = hash_key(partition_key)
    assert key == int(md5_hex, 16)
    expected = shard_of_4 if shard_of_4 is not None else int(md5_hex[0], 16) >> 2  # top 2 bits
    assert shard_for_hash_key(key, 4) == expected


@given(st.integers(0, MAX_HASH_KEY), st.integers(1, 200))
def test_the_chosen_shard_holds_the_key(key: int, shards: int) -> None:
    chosen = hash_key_ranges(shards)[shard_for_hash_key(key, shards)]
    assert chosen.start <= key <= chosen.end


def test_ids_and_sequence_numbers() -> None:
    assert shard_id(3) == "shardId-000000000003"
    first, second = sequence_number(1, 9), sequence_number(1, 10)
    assert len(first) == 56 and first < second and int(first) < int(second)
    assert parse_sequence_number(second) == (1, 10)
