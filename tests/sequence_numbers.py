"""Reading a Kinesis sequence number back: the tests' check that one names the record it was
given for (the API only ever makes them, in ``services/ingest_api/kinesis.py``)."""

from __future__ import annotations


def parse_sequence_number(value: str) -> tuple[int, int]:
    """(partition, offset) of a sequence number made by ``kinesis.sequence_number``."""
    if len(value) != 56 or not value.isdigit() or not value.startswith("49"):
        raise ValueError(f"not a pinpipe sequence number: {value!r}")
    return int(value[2:8]), int(value[8:])
