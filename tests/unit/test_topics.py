from __future__ import annotations

import re

import pytest

from shared.topics import (
    RAW_TOPIC_PATTERN,
    clean_topic,
    is_internal_topic,
    is_valid_topic_name,
    raw_batch_topic,
    raw_stream_topic,
    raw_topics,
    record_type_of,
)


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("0a1d8948160f.pin", "pin"),
        ("pinterest.geo", "geo"),
        ("streaming-pinterest-user", "user"),
        ("pinpipe.clean.geo", "geo"),
        ("pinpipe.dlq", None),
        ("pinterest.pins", None),
    ],
)
def test_record_type_is_the_suffix(topic: str, expected: str | None) -> None:
    assert record_type_of(topic) == expected


def test_raw_pattern_takes_both_spellings_and_never_a_clean_topic() -> None:
    def raw(topic: str) -> bool:
        return re.match(RAW_TOPIC_PATTERN, topic) is not None

    assert raw(raw_batch_topic("0a1d8948160f", "pin"))
    assert raw(raw_stream_topic("0a1d8948160f", "geo"))
    assert not raw(clean_topic("pin"))
    assert not raw("pinpipe.dlq")
    assert not raw("pinpipe-aggregator-geo-country-changelog")


def test_raw_topics_of_a_prefix() -> None:
    assert raw_topics("p") == [
        "p.pin",
        "p.geo",
        "p.user",
        "streaming-p-pin",
        "streaming-p-geo",
        "streaming-p-user",
    ]


@pytest.mark.parametrize(
    "name",
    [
        "pinpipe.dlq",
        "pinpipe_dlq",  # folds onto pinpipe.dlq: Kafka takes '.' and '_' as one
        "pinpipe.clean.pin",
        "pinpipe_clean_pin",
        "pinpipe.streams",
        "pinpipe-aggregator-posts-changelog",
        "pinpipe-cleaner-anything",
        "__consumer_offsets",
        "._consumer_offsets",
        "_schemas",
        "someapp-table-changelog",
        "someapp-key-repartition",
    ],
)
def test_internal_topics_and_names_folding_onto_them(name: str) -> None:
    assert is_internal_topic(name)


@pytest.mark.parametrize(
    "name", [*raw_topics("pinterest"), "streaming-mine", "orders.v1", "pinpipeline.pin"]
)
def test_client_topics_are_not_internal(name: str) -> None:
    assert not is_internal_topic(name)


@pytest.mark.parametrize(
    ("name", "valid"),
    [("a", True), ("a.b_c-d", True), (".", False), ("..", False), ("", False), ("a" * 250, False)],
)
def test_kafka_topic_name_rule(name: str, valid: bool) -> None:
    assert is_valid_topic_name(name) is valid
