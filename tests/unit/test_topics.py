from __future__ import annotations

import pytest

from shared.topics import (
    clean_topic,
    is_raw_topic,
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
    assert is_raw_topic(raw_batch_topic("0a1d8948160f", "pin"))
    assert is_raw_topic(raw_stream_topic("0a1d8948160f", "geo"))
    assert not is_raw_topic(clean_topic("pin"))
    assert not is_raw_topic("pinpipe.dlq")
    assert not is_raw_topic("pinpipe-aggregator-geo-country-changelog")


def test_raw_topics_of_a_prefix() -> None:
    assert raw_topics("p") == [
        "p.pin",
        "p.geo",
        "p.user",
        "streaming-p-pin",
        "streaming-p-geo",
        "streaming-p-user",
    ]
