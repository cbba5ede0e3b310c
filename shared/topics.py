"""Kafka topic names of DESIGN.md and the record type each raw topic carries.

Raw topics come in two spellings: batch (REST proxy) ``<prefix>.pin|geo|user`` and stream
(Kinesis-style) ``streaming-<prefix>-pin|geo|user``. The record type is the suffix. Clean
topics are ``pinpipe.clean.<type>`` keyed by ``ind``; bad records go to ``pinpipe.dlq``.
"""

from __future__ import annotations

import re
from typing import Literal, get_args

RecordType = Literal["pin", "geo", "user"]
RECORD_TYPES: tuple[RecordType, ...] = get_args(RecordType)

CLEAN_TOPIC_PREFIX = "pinpipe.clean."
DLQ_TOPIC = "pinpipe.dlq"

CLEAN_TOPIC_PATTERN = r"^pinpipe\.clean\.(pin|geo|user)$"
# Any raw topic of any prefix, never a clean topic (which also ends in ".pin" etc.).
RAW_TOPIC_PATTERN = (
    r"^(?!pinpipe\.clean\.)[A-Za-z0-9._-]+\.(pin|geo|user)$"
    r"|^streaming-[A-Za-z0-9._-]+-(pin|geo|user)$"
)
_RAW_RE = re.compile(RAW_TOPIC_PATTERN)


def raw_batch_topic(prefix: str, record_type: RecordType) -> str:
    """The REST-proxy (batch) raw topic, e.g. ``pinterest.pin``."""
    return f"{prefix}.{record_type}"


def raw_stream_topic(prefix: str, record_type: RecordType) -> str:
    """The Kinesis-style (stream) raw topic, e.g. ``streaming-pinterest-pin``."""
    return f"streaming-{prefix}-{record_type}"


def clean_topic(record_type: RecordType) -> str:
    """The clean topic of a record type, e.g. ``pinpipe.clean.pin``."""
    return f"{CLEAN_TOPIC_PREFIX}{record_type}"


def clean_topics() -> list[str]:
    return [clean_topic(t) for t in RECORD_TYPES]


def raw_topics(prefix: str) -> list[str]:
    """Every raw topic, batch and stream spelling, of one prefix."""
    return [raw_batch_topic(prefix, t) for t in RECORD_TYPES] + [
        raw_stream_topic(prefix, t) for t in RECORD_TYPES
    ]


def is_raw_topic(topic: str) -> bool:
    return _RAW_RE.match(topic) is not None


def record_type_of(topic: str) -> RecordType | None:
    """The record type a topic carries, from its suffix; None when it has none."""
    if topic.startswith(CLEAN_TOPIC_PREFIX):
        return next((t for t in RECORD_TYPES if topic == clean_topic(t)), None)
    for record_type in RECORD_TYPES:
        if topic.endswith(f".{record_type}") or topic.endswith(f"-{record_type}"):
            return record_type
    return None
