from __future__ import annotations

import base64
import hashlib
import json

from services.cleaner.processing import Cleaned, Rejected, process
from shared.models import DlqEntry
from shared.topics import DLQ_MAX_ORIGINAL_BYTES, MAX_RECORD_VALUE_BYTES

GEO = {
    "ind": 7,
    "timestamp": "2020-08-28T03:52:47",
    "latitude": 1.5,
    "longitude": 2.5,
    "country": "Aruba",
}


def test_a_good_record_goes_to_its_clean_topic_keyed_by_ind() -> None:
    result = process("streaming-p-geo", 1, 42, json.dumps(GEO).encode(), 1 << 20)
    assert isinstance(result, Cleaned)
    assert result.topic == "pinpipe.clean.geo"
    assert result.key == b"7"
    assert json.loads(result.value)["coordinates"] == [1.5, 2.5]


def _rejected(topic: str, value: bytes, limit: int = 1 << 20) -> DlqEntry:
    result = process(topic, 2, 9, value, limit)
    assert isinstance(result, Rejected)
    entry = DlqEntry.model_validate_json(result.value)
    assert entry.reason == result.reason
    assert (entry.source_topic, entry.source_partition, entry.source_offset) == (topic, 2, 9)
    assert base64.b64decode(entry.original_base64) == value
    return entry


def test_bad_records_go_to_the_dlq_with_the_original_bytes_and_reason() -> None:
    assert _rejected("p.geo", b"{not json").reason == "not_json"
    assert _rejected("p.geo", b'{"country": "x"}').reason == "missing_ind"
    assert _rejected("p.geo", b'{"ind": "x"}').reason == "wrong_type"
    assert _rejected("p.nothing", json.dumps(GEO).encode()).reason == "unknown_type"
    assert _rejected("p.geo", json.dumps(GEO).encode(), limit=10).reason == "oversize"
    assert _rejected("p.geo", b"\xff\xfe").reason == "not_json"


def test_a_huge_rejected_record_becomes_a_bounded_dlq_entry() -> None:
    """A ~0.9 MiB record without an ind: its DLQ entry must fit in a Kafka record (base64 of
    the whole original would not), and still say how long the original was and its hash."""
    value = json.dumps({"title": "x" * 900_000}).encode()
    result = process("p.pin", 0, 5, value, MAX_RECORD_VALUE_BYTES)
    assert isinstance(result, Rejected) and result.reason == "missing_ind"
    assert len(result.value) < DLQ_MAX_ORIGINAL_BYTES * 2
    entry = DlqEntry.model_validate_json(result.value)
    assert entry.original_truncated
    assert entry.original_bytes == len(value)
    assert entry.original_sha256 == hashlib.sha256(value).hexdigest()
    assert base64.b64decode(entry.original_base64) == value[:DLQ_MAX_ORIGINAL_BYTES]


def test_a_small_rejected_record_is_kept_whole() -> None:
    entry = _rejected("p.geo", b"{not json")
    assert not entry.original_truncated and entry.original_bytes == 9


def test_a_clean_record_over_the_limit_goes_to_the_dlq() -> None:
    """Cleaning can lengthen a record (every missing column is written out as null): the
    clean form is checked against the limit too, or it could not be written."""
    raw = b'{"index": 1}'
    assert isinstance(process("p.pin", 0, 1, raw, 1_000), Cleaned)
    result = process("p.pin", 0, 1, raw, len(raw))
    assert isinstance(result, Rejected) and result.reason == "oversize"
