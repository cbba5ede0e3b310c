"""The S3 sink against the real broker, on a file:// lake and on the real S3 server: every
record once in the Delta tables, the table's transactions at each partition's next offset, a
restart that lost its Kafka offsets resuming from the table, two sinks committing at once, a
file the table holds in part adding only the rest."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import SecretStr

from services.s3_sink.config import S3SinkSettings
from services.s3_sink.sink import PartitionBuffer, S3Sink
from services.s3_sink.tables import to_lake_table
from shared.kafka_admin import ensure_topics
from shared.kafka_security import KafkaConnection
from shared.lake import Lake
from shared.lake_tables import Offsets, dataset, open_table, sink_app_id, with_date
from shared.models import DlqEntry
from shared.topics import DLQ_TOPIC
from tests.conftest import async_wait_until
from tests.integration.conftest import consume_all
from tests.servers import S3Server

pytestmark = pytest.mark.integration


def _geo(ind: int) -> bytes:
    return json.dumps(
        {
            "ind": ind,
            "country": f"C{ind % 5}",
            "coordinates": [1.0, 2.0],
            "timestamp": "2020-01-01T00:00:00",
        }
    ).encode()


async def _produce(bootstrap: str, records: list[tuple[str, bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for topic, key, value in records:
            await producer.send(topic, key=key, value=value)
        await producer.flush()
    finally:
        await producer.stop()


def _rows(lake: Lake, zone: str, record_type: str) -> list[dict[str, Any]]:
    table = open_table(lake, f"{zone}/{record_type}")
    return [] if table is None else table.to_pyarrow_table().to_pylist()


def _next_offsets(lake: Lake, relative: str, group: str, topic: str, partitions: int) -> list[Any]:
    table = open_table(lake, relative)
    assert table is not None
    return [table.transaction_version(sink_app_id(group, topic, p)) for p in range(partitions)]


async def _run_sink(
    settings: S3SinkSettings, lake: Lake, until: Callable[[], Awaitable[bool]]
) -> None:
    stop = asyncio.Event()
    sink = S3Sink(settings, lake)
    task = asyncio.create_task(sink.run(stop))
    try:
        await async_wait_until(until, seconds=60, what="the lake to hold every record")
    finally:
        stop.set()
        await task


async def _check_sink(kafka_bootstrap: str, unique: str, lake: Lake) -> None:
    clean_topic, raw_topic = f"t{unique}.clean.geo", f"t{unique}.geo"
    await ensure_topics(KafkaConnection(kafka_bootstrap), [clean_topic, raw_topic], 2)
    settings = S3SinkSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        s3_sink_group_id=f"sink-{unique}",
        lake_url=lake.url,
        s3_sink_clean_topic_pattern=rf"^t{unique}\.clean\.geo$",
        s3_sink_raw_topic_pattern=rf"^t{unique}\.geo$",
        s3_sink_max_open_seconds=1.0,
        s3_sink_roll_bytes=2_000,
    )
    first = [(clean_topic, str(i).encode(), _geo(i)) for i in range(150)]
    raws = [(raw_topic, b"k", b'{"ind": 1, "odd": ["kept", "as received"]}')] * 5
    await _produce(kafka_bootstrap, first + raws)

    async def holds(n_clean: int, n_raw: int) -> bool:
        clean, raw = _rows(lake, "clean", "geo"), _rows(lake, "raw", "geo")
        return len(clean) >= n_clean and len(raw) >= n_raw

    await _run_sink(settings, lake, lambda: holds(150, 5))
    # A second run resumes from the committed offsets: nothing again, nothing lost.
    second = [(clean_topic, str(i).encode(), _geo(i)) for i in range(150, 200)]
    await _produce(kafka_bootstrap, second)
    await _run_sink(settings, lake, lambda: holds(200, 5))

    clean = _rows(lake, "clean", "geo")
    assert len(clean) == 200
    for partition in (0, 1):
        offsets = sorted(r["_offset"] for r in clean if r["_partition"] == partition)
        assert offsets == list(range(len(offsets))), f"gap or duplicate in partition {partition}"
    assert sorted(r["ind"] for r in clean) == list(range(200))
    assert clean[0]["coordinates"] == [1.0, 2.0] and clean[0]["timestamp"].year == 2020
    raw = _rows(lake, "raw", "geo")
    assert [json.loads(r["value"]) for r in raw] == [{"ind": 1, "odd": ["kept", "as received"]}] * 5
    geo = open_table(lake, "clean/geo")
    assert geo is not None and len(geo.file_uris()) > 2  # rolled by size
    group = settings.s3_sink_group_id
    per_partition = [sum(r["_partition"] == p for r in clean) for p in (0, 1)]
    assert _next_offsets(lake, "clean/geo", group, clean_topic, 2) == per_partition
    assert _next_offsets(lake, "raw/geo", group, raw_topic, 2) == [
        sum(r["_partition"] == p for r in raw) or None for p in (0, 1)
    ]

    con = duckdb.connect()
    con.register("geo", dataset(lake, "clean/geo"))
    assert con.execute("SELECT count(*), count(DISTINCT ind) FROM geo").fetchone() == (200, 200)


async def test_file_lake_holds_every_record_once(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    lake = S3SinkSettings(lake_url=f"file://{tmp_path}/lake").open_lake()
    await _check_sink(kafka_bootstrap, unique, lake)


async def test_s3_lake_holds_every_record_once(
    kafka_bootstrap: str, unique: str, s3_server: S3Server, s3_bucket: str
) -> None:
    settings = S3SinkSettings(
        lake_url=f"s3://{s3_bucket}/lake",
        s3_endpoint_url=s3_server.endpoint,
        s3_access_key_id=SecretStr(s3_server.access_key),
        s3_secret_access_key=SecretStr(s3_server.secret_key),
    )
    await _check_sink(kafka_bootstrap, unique, settings.open_lake())


async def test_an_idle_partition_is_published_within_the_bound_and_files_roll_by_record_time(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    topic = f"t{unique}.clean.geo"
    await ensure_topics(KafkaConnection(kafka_bootstrap), [topic], 1)
    lake = S3SinkSettings(lake_url=f"file://{tmp_path}/lake").open_lake()
    settings = S3SinkSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        s3_sink_group_id=f"sink-{unique}",
        lake_url=lake.url,
        s3_sink_clean_topic_pattern=rf"^{topic.replace('.', '[.]')}$",
        s3_sink_raw_topic_pattern="",
        s3_sink_roll_seconds=10.0,  # record time
        s3_sink_max_open_seconds=3.0,  # processing time
    )
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:  # 0 s, 5 s, 9 s of record time, then 12 s: a new file from the fourth on
        base_ms = 1_700_000_000_000
        for i, at in enumerate((0, 5_000, 9_000, 12_000)):
            await producer.send_and_wait(topic, _geo(i), timestamp_ms=base_ms + at)
    finally:
        await producer.stop()
    stop = asyncio.Event()
    sink = S3Sink(settings, lake)
    task = asyncio.create_task(sink.run(stop))
    try:
        # The fourth record opens a new file (10 s of record time): the first is written then.
        await async_wait_until(
            lambda: _async(len(_rows(lake, "clean", "geo")) == 3),
            seconds=30,
            what="the first file (rolled by record time)",
            interval=0.05,
        )
        opened = time.monotonic()
        # Then nothing more comes: the open file is published within 3 s + one poll.
        await async_wait_until(
            lambda: _async(len(_rows(lake, "clean", "geo")) == 4),
            seconds=10,
            what="the idle partition's records in the lake",
            interval=0.05,
        )
        waited = time.monotonic() - opened
        assert waited <= 3.0 + 0.5 + 1.0, f"published after {waited:.1f} s"  # + 1 s of slack
        table = open_table(lake, "clean/geo")
        assert table is not None
        commits = [c["pinpipe"] for c in reversed(table.history()) if "pinpipe" in c]
        assert [(c["start_offset"], c["next_offset"]) for c in commits] == [(0, 3), (3, 4)], (
            "files roll at 10 s of record time"
        )
    finally:
        stop.set()
        await task


async def _async(value: bool) -> bool:
    return value


async def test_clean_records_that_fit_no_schema_go_to_the_dlq(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    topic = f"t{unique}.clean.geo"
    await ensure_topics(KafkaConnection(kafka_bootstrap), [topic, DLQ_TOPIC], 1)
    lake = S3SinkSettings(lake_url=f"file://{tmp_path}/lake").open_lake()
    settings = S3SinkSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        s3_sink_group_id=f"sink-{unique}",
        lake_url=lake.url,
        s3_sink_clean_topic_pattern=rf"^{topic.replace('.', '[.]')}$",
        s3_sink_raw_topic_pattern="",
        s3_sink_max_open_seconds=1.0,
    )
    bad = [b"not json", b'{"ind": "seven"}', b'{"country": "no ind"}', b'{"ind": 1, "x": 2}']
    good = [_geo(i) for i in range(10)]
    await _produce(kafka_bootstrap, [(topic, b"k", v) for v in good[:5] + bad + good[5:]])
    await _run_sink(settings, lake, lambda: _async(len(_rows(lake, "clean", "geo")) == 10))
    assert sorted(r["ind"] for r in _rows(lake, "clean", "geo")) == list(range(10))
    entries = [
        DlqEntry.model_validate_json(r.value)
        for r in await consume_all(kafka_bootstrap, DLQ_TOPIC, 10_000)
    ]
    ours = [e for e in entries if e.source_topic == topic]
    assert sorted(base64.b64decode(e.original_base64) for e in ours) == sorted(bad)
    assert {e.reason for e in ours} == {"unreadable_clean"}
    assert sorted(e.source_offset for e in ours) == [5, 6, 7, 8]


def _geo_settings(kafka_bootstrap: str, unique: str, lake: Lake, topic: str) -> S3SinkSettings:
    return S3SinkSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        s3_sink_group_id=f"sink-{unique}",
        lake_url=lake.url,
        s3_endpoint_url=lake.storage_options.get("AWS_ENDPOINT_URL"),
        s3_access_key_id=SecretStr(lake.storage_options.get("AWS_ACCESS_KEY_ID", "")) or None,
        s3_secret_access_key=(
            SecretStr(lake.storage_options.get("AWS_SECRET_ACCESS_KEY", "")) or None
        ),
        s3_sink_clean_topic_pattern=rf"^{topic.replace('.', '[.]')}$",
        s3_sink_raw_topic_pattern="",
        s3_sink_max_open_seconds=1.0,
        s3_sink_roll_bytes=4_000,
    )


def _offsets_once(rows: list[dict[str, Any]]) -> bool:
    keys = [(r["_partition"], r["_offset"]) for r in rows]
    return len(keys) == len(set(keys))


async def test_a_sink_that_lost_its_kafka_offsets_resumes_from_the_table(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    """The sink stopped after its table commits and before (here: instead of) its Kafka
    commits: the group's offsets are back at 0, yet the next run writes nothing twice."""
    topic = f"t{unique}.clean.geo"
    await ensure_topics(KafkaConnection(kafka_bootstrap), [topic], 2)
    lake = S3SinkSettings(lake_url=f"file://{tmp_path}/lake").open_lake()
    settings = _geo_settings(kafka_bootstrap, unique, lake, topic)
    await _produce(kafka_bootstrap, [(topic, str(i).encode(), _geo(i)) for i in range(100)])
    await _run_sink(settings, lake, lambda: _async(len(_rows(lake, "clean", "geo")) == 100))

    rewind = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=settings.s3_sink_group_id)
    await rewind.start()
    try:
        partitions = [TopicPartition(topic, p) for p in (0, 1)]
        rewind.assign(partitions)
        await rewind.commit({tp: 0 for tp in partitions})
        assert [await rewind.committed(tp) for tp in partitions] == [0, 0]
    finally:
        await rewind.stop()

    await _produce(kafka_bootstrap, [(topic, str(i).encode(), _geo(i)) for i in range(100, 120)])
    await _run_sink(settings, lake, lambda: _async(len(_rows(lake, "clean", "geo")) >= 120))
    rows = _rows(lake, "clean", "geo")
    assert len(rows) == 120 and _offsets_once(rows), "records of the table were written again"
    assert sorted(r["ind"] for r in rows) == list(range(120))


async def _two_sinks_at_once(kafka_bootstrap: str, unique: str, lake: Lake) -> None:
    """Two sinks of one group share six partitions (the second joins while the first
    commits: a rebalance) and commit to the same table at the same time."""
    topic = f"t{unique}.clean.geo"
    await ensure_topics(KafkaConnection(kafka_bootstrap), [topic], 6)
    settings = _geo_settings(kafka_bootstrap, unique, lake, topic)
    await _produce(kafka_bootstrap, [(topic, str(i).encode(), _geo(i)) for i in range(1_500)])
    stop = asyncio.Event()
    first, second = S3Sink(settings, lake), S3Sink(settings, lake)
    tasks = [asyncio.create_task(first.run(stop))]
    try:
        await async_wait_until(
            lambda: _async(len(_rows(lake, "clean", "geo")) > 0),
            seconds=60,
            what="the first sink's first commit",
        )
        tasks.append(asyncio.create_task(second.run(stop)))

        def split() -> bool:  # the rebalance is over: each sink holds half the partitions
            held = [len(s.consumer.assignment()) if s.consumer else 0 for s in (first, second)]
            return held == [3, 3] and all(s.positions_known.is_set() for s in (first, second))

        await async_wait_until(lambda: _async(split()), seconds=60, what="the rebalance")
        await _produce(
            kafka_bootstrap, [(topic, str(i).encode(), _geo(i)) for i in range(1_500, 3_000)]
        )
        await async_wait_until(
            lambda: _async(len(_rows(lake, "clean", "geo")) >= 3_000),
            seconds=120,
            what="every record in the table",
        )
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    assert first.committed and second.committed, "one sink committed nothing"
    rows = _rows(lake, "clean", "geo")
    assert len(rows) == 3_000 and _offsets_once(rows), "a commit was doubled"
    assert sorted(r["ind"] for r in rows) == list(range(3_000)), "a commit was lost"
    per_partition = [sum(r["_partition"] == p for r in rows) for p in range(6)]
    group = settings.s3_sink_group_id
    assert _next_offsets(lake, "clean/geo", group, topic, 6) == per_partition
    table = open_table(lake, "clean/geo")
    assert table is not None
    writers = {c["pinpipe"]["app_id"] for c in table.history() if "pinpipe" in c}
    assert len(writers) == 6


async def test_two_sinks_commit_to_one_file_table_at_once(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    await _two_sinks_at_once(
        kafka_bootstrap, unique, S3SinkSettings(lake_url=f"file://{tmp_path}/lake").open_lake()
    )


async def test_two_sinks_commit_to_one_s3_table_at_once(
    kafka_bootstrap: str, unique: str, s3_server: S3Server, s3_bucket: str
) -> None:
    """On S3, concurrent commits rely on the server refusing a second PUT of one log entry
    (``If-None-Match: *``): SeaweedFS does."""
    lake = S3SinkSettings(
        lake_url=f"s3://{s3_bucket}/lake",
        s3_endpoint_url=s3_server.endpoint,
        s3_access_key_id=SecretStr(s3_server.access_key),
        s3_secret_access_key=SecretStr(s3_server.secret_key),
    ).open_lake()
    await _two_sinks_at_once(kafka_bootstrap, unique, lake)


def _file(topic: str, first: int, last: int) -> tuple[PartitionBuffer, pa.Table]:
    """A sink file of one partition's records ``first``..``last`` and its Delta rows."""
    buffer = PartitionBuffer("clean", "geo", first, 1_767_225_600_000)
    for offset in range(first, last + 1):
        buffer.columns.add(None, _geo(offset), offset, 1_767_225_600_000)
    buffer.next_offset = last + 1
    table, unreadable = to_lake_table("clean", "geo", topic, 0, buffer.columns)
    assert not unreadable
    return buffer, with_date(table, buffer.day)


def test_a_file_the_table_holds_in_part_commits_the_rest(unique: str, tmp_path: Path) -> None:
    """The table's version of a partition is the truth: a file the table holds is committed
    no more, one it holds in part adds the rest, whichever sink (with its own open table)
    commits it."""
    settings = S3SinkSettings(lake_url=f"file://{tmp_path}/lake", s3_sink_group_id=unique)
    lake = settings.open_lake()
    first, second = S3Sink(settings, lake), S3Sink(settings, lake)
    topic = f"t{unique}.clean.geo"
    app_id = sink_app_id(unique, topic, 0)

    def commit(sink: S3Sink, first_offset: int, last_offset: int) -> int:
        buffer, data = _file(topic, first_offset, last_offset)
        offsets = Offsets(app_id, buffer.next_offset)
        return int(sink._append_once("clean/geo", data, buffer, offsets).num_rows)

    assert commit(first, 0, 9) == 10
    assert commit(second, 0, 9) == 0  # held already (the other sink's commit)
    version = open_table(lake, "clean/geo").version()  # type: ignore[union-attr]
    assert commit(second, 5, 14) == 5  # offsets 10..14
    assert commit(first, 12, 19) == 5  # its open table is behind: brought up to date first
    table = open_table(lake, "clean/geo")
    assert table is not None and table.version() == version + 2
    rows = table.to_pyarrow_table().to_pylist()
    assert sorted(r["_offset"] for r in rows) == list(range(20))
    assert table.transaction_version(app_id) == 20
    starts = [c["pinpipe"]["start_offset"] for c in table.history() if "pinpipe" in c]
    assert sorted(starts) == [0, 10, 15]
