"""Kinesis semantics over Kafka, as pure functions: streams are topics, shards are partitions.

- A stream of N shards splits the 128-bit hash key space [0, 2^128) evenly, as Kinesis does:
  shard i holds [floor(i * 2^128 / N), floor((i + 1) * 2^128 / N) - 1].
- A record's hash key is the MD5 of its partition key read as a big-endian 128-bit integer, or
  its ``ExplicitHashKey``; the record goes to the shard whose range holds it.
- Shard ids are ``shardId-000000000000``; sequence numbers are decimal strings that grow with
  the Kafka offset within a shard (``49`` + partition (6 digits) + offset (48 digits)), so a
  sequence number maps back to its shard and offset.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

HASH_SPACE = 1 << 128
MAX_HASH_KEY = HASH_SPACE - 1
STREAM_NAME_RE = re.compile(r"^[a-zA-Z0-9_.-]{1,128}$")
MAX_PARTITION_KEY_LENGTH = 256
MAX_RECORD_BYTES = 1024 * 1024
MAX_RECORDS_PER_PUT = 500
MAX_PUT_RECORDS_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class HashKeyRange:
    start: int
    end: int  # inclusive


def hash_key_ranges(shard_count: int) -> list[HashKeyRange]:
    """The even split of the hash key space over ``shard_count`` shards."""
    if shard_count < 1:
        raise ValueError("a stream has at least one shard")
    bounds = [i * HASH_SPACE // shard_count for i in range(shard_count + 1)]
    return [HashKeyRange(bounds[i], bounds[i + 1] - 1) for i in range(shard_count)]


def hash_key(partition_key: str) -> int:
    """Kinesis' hash key of a partition key: MD5 of its UTF-8 bytes, big-endian."""
    digest = hashlib.md5(partition_key.encode("utf-8"), usedforsecurity=False).digest()
    return int.from_bytes(digest, "big")


def shard_for_hash_key(key: int, shard_count: int) -> int:
    """The shard whose range holds ``key`` (the inverse of :func:`hash_key_ranges`)."""
    if not 0 <= key <= MAX_HASH_KEY:
        raise ValueError("hash key outside [0, 2^128)")
    shard = key * shard_count // HASH_SPACE
    # Integer rounding can put the key one shard off at a boundary: check against the ranges.
    ranges = hash_key_ranges(shard_count)
    while key < ranges[shard].start:
        shard -= 1
    while key > ranges[shard].end:
        shard += 1
    return shard


def shard_id(partition: int) -> str:
    return f"shardId-{partition:012d}"


def sequence_number(partition: int, offset: int) -> str:
    return f"49{partition:06d}{offset:048d}"


def stream_arn(name: str, region: str = "us-east-1", account: str = "000000000000") -> str:
    return f"arn:aws:kinesis:{region}:{account}:stream/{name}"
