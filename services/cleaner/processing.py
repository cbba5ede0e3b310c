"""What the cleaner does to one Kafka message, as a pure function: bytes in, either a clean
record for a clean topic or a DLQ entry out. The loop (:mod:`services.cleaner.loop`) only moves
bytes around it."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from shared.cleaning import BadRecord, clean
from shared.models import DlqEntry
from shared.profiles import Profile
from shared.topics import clean_topic, record_type_of


@dataclass(frozen=True)
class Cleaned:
    topic: str
    key: bytes
    value: bytes
    record_type: str


@dataclass(frozen=True)
class Rejected:
    value: bytes
    reason: str


def process(
    topic: str,
    partition: int,
    offset: int,
    value: bytes | None,
    max_bytes: int,
    profile: Profile = "standard",
) -> Cleaned | Rejected:
    """Clean one raw message, or say why it goes to the DLQ."""
    raw = value or b""
    try:
        if len(raw) > max_bytes:
            raise BadRecord("oversize", f"{len(raw)} bytes > {max_bytes}")
        record_type = record_type_of(topic)
        if record_type is None:
            raise BadRecord("unknown_type", f"topic {topic!r} has no pin/geo/user suffix")
        try:
            decoded = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise BadRecord("not_json", str(exc)) from exc
        record = clean(record_type, decoded, profile)
        cleaned = orjson.dumps(record)
        if len(cleaned) > max_bytes:  # cleaning can lengthen a record (escapes, numbers)
            raise BadRecord("oversize", f"clean record of {len(cleaned)} bytes > {max_bytes}")
        return Cleaned(
            topic=clean_topic(record_type),
            key=str(record["ind"]).encode(),
            value=cleaned,
            record_type=record_type,
        )
    except BadRecord as bad:
        entry = DlqEntry.of(
            raw,
            source_topic=topic,
            source_partition=partition,
            source_offset=offset,
            reason=bad.reason,
            detail=bad.detail,
        )
        return Rejected(value=entry.model_dump_json().encode(), reason=bad.reason)
