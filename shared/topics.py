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
STREAM_REGISTRY_TOPIC = "pinpipe.streams"  # the ingest API's stream creation times

# The largest record value pinpipe writes to Kafka. The broker's default message.max.bytes is
# 1 MiB + 12 for a whole batch: a value of this size leaves room for the batch and record
# headers and a 256-byte key. The ingest API refuses larger values up front, the cleaner sends
# a larger clean record to the DLQ. Producers' max_request_size is the broker's limit: a
# record pinpipe accepts always fits, and a batch never exceeds what the broker takes.
MAX_RECORD_VALUE_BYTES = 1_000_000
PRODUCER_MAX_REQUEST_BYTES = 1024 * 1024
# A DLQ entry keeps at most this many bytes of the original (with its length and SHA-256),
# so that an entry always fits in a record, however large the rejected record was.
DLQ_MAX_ORIGINAL_BYTES = 64 * 1024

CLEAN_TOPIC_PATTERN = r"^pinpipe\.clean\.(pin|geo|user)$"
# Any raw topic of any prefix, never a clean topic (which also ends in ".pin" etc.).
RAW_TOPIC_PATTERN = (
    r"^(?!pinpipe\.clean\.)[A-Za-z0-9._-]+\.(pin|geo|user)$"
    r"|^streaming-[A-Za-z0-9._-]+-(pin|geo|user)$"
)


def _folded(name: str) -> str:
    """Kafka refuses a topic whose name equals another's once '.' and '_' are the same (their
    metric names would collide): compare names in that folded form."""
    return name.replace(".", "_")


# pinpipe's own topics (clean, DLQ, stream registry; the cleaner's and the aggregator's
# changelogs and Faust's internal topics start with "pinpipe-"), Kafka's ("__consumer_offsets",
# "__transaction_state", …) and other tools' internal topics ("_schemas", "…-changelog",
# "…-repartition"), all compared folded.
_INTERNAL_PREFIXES = ("pinpipe_", "pinpipe-", "_")
_INTERNAL_SUFFIXES = ("-changelog", "-repartition")


def is_internal_topic(name: str) -> bool:
    """True for a topic no client of the ingest API may create, write, read or delete: any
    name that is, or folds onto, one of pinpipe's internal topics or Kafka's."""
    folded = _folded(name)
    return folded.startswith(_INTERNAL_PREFIXES) or folded.endswith(_INTERNAL_SUFFIXES)


def is_valid_topic_name(name: str) -> bool:
    """Kafka's own rule: 1 to 249 of [a-zA-Z0-9._-], and not "." or ".."."""
    return _NAME_RE.match(name) is not None and name not in (".", "..")


_NAME_RE = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")


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


def record_type_of(topic: str) -> RecordType | None:
    """The record type a topic carries, from its suffix; None when it has none."""
    if topic.startswith(CLEAN_TOPIC_PREFIX):
        return next((t for t in RECORD_TYPES if topic == clean_topic(t)), None)
    for record_type in RECORD_TYPES:
        if topic.endswith(f".{record_type}") or topic.endswith(f"-{record_type}"):
            return record_type
    return None


# the S3 sink's consumer group by default (PINPIPE_S3_SINK_GROUP_ID), which also names its
# transactions in the lake's tables (shared/lake_tables.py: sink_app_id)
SINK_GROUP_ID = "pinpipe-s3-sink"
