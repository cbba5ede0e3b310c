"""The sink as a real process on a real S3 server: kill -9 in the middle of a file, and the S3
server stopped for a while. Both times the lake's Delta tables end with exactly the records of
the topics, offsets contiguous per partition, no duplicate, readable by delta-rs and DuckDB."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
import s3fs
from aiokafka import AIOKafkaConsumer
from pydantic import SecretStr

from shared.kafka_admin import ensure_topics
from shared.kafka_security import KafkaConnection
from shared.lake import open_lake
from shared.lake_tables import open_table
from tests.conftest import wait_until
from tests.integration.conftest import group_committed, produce
from tests.processes import ServiceProcess
from tests.servers import S3_PORT_OFFSETS, S3Server, free_port

pytestmark = pytest.mark.integration
PARTITIONS = 3
RETRIES_IN_OUTAGE = 2  # failed attempts at one file (a retry after backoff) the outage lasts


def _geo(ind: int) -> bytes:
    return json.dumps(
        {
            "ind": ind,
            "country": f"C{ind % 7}",
            "coordinates": [1.0, 2.0],
            "timestamp": "2020-01-01T00:00:00",
        }
    ).encode()


@pytest.fixture
def own_s3(tmp_path: Path) -> Iterator[S3Server]:
    """An S3 server of the test alone (it gets stopped and started again)."""
    server = S3Server(free_port(S3_PORT_OFFSETS, start=30333), tmp_path / "s3")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _fs(s3: S3Server) -> Any:
    return s3fs.S3FileSystem(
        key=s3.access_key,
        secret=s3.secret_key,
        endpoint_url=s3.endpoint,
        config_kwargs={"s3": {"addressing_style": "path"}},
        skip_instance_cache=True,
    )


def _bucket(s3: S3Server, name: str) -> None:
    def made() -> bool:
        try:
            _fs(s3).mkdir(name)
            return True
        except Exception:
            return False

    wait_until(made, timeout=60, what=f"bucket {name}")


def _env(kafka: str, unique: str, s3: S3Server, bucket: str) -> dict[str, str]:
    prefix = f"s{unique}"
    return {
        **os.environ,
        "PINPIPE_KAFKA_BOOTSTRAP_SERVERS": kafka,
        "PINPIPE_TOPIC_PARTITIONS": str(PARTITIONS),
        "PINPIPE_LAKE_URL": f"s3://{bucket}/lake",
        "PINPIPE_S3_ENDPOINT_URL": s3.endpoint,
        "PINPIPE_S3_ACCESS_KEY_ID": s3.access_key,
        "PINPIPE_S3_SECRET_ACCESS_KEY": s3.secret_key,
        "PINPIPE_S3_SINK_GROUP_ID": f"sink-{unique}",
        "PINPIPE_S3_SINK_CLEAN_TOPIC_PATTERN": rf"^{prefix}\.clean\.geo$",
        "PINPIPE_S3_SINK_RAW_TOPIC_PATTERN": rf"^{prefix}\.geo$",
        "PINPIPE_S3_SINK_ROLL_BYTES": str(64 * 1024),  # many files
        "PINPIPE_S3_SINK_MAX_OPEN_SECONDS": "2",
        "PINPIPE_LOG_LEVEL": "INFO",
    }


def _readyz(sink: ServiceProcess) -> int:
    return httpx.get(sink.url + "/readyz", timeout=5).status_code


def _failed_writes(log: Path) -> Counter[tuple[str, str, int]]:
    """How often the sink logged a failed commit of each file: (table, app id, next offset)."""
    failed: Counter[tuple[str, str, int]] = Counter()
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("msg") == "lake commit failed; retrying":
                failed[(entry["table"], entry["app_id"], entry["next_offset"])] += 1
    return failed


def _records(unique: str, first: int, count: int) -> list[tuple[str, bytes]]:
    prefix = f"s{unique}"
    records = [(f"{prefix}.clean.geo", _geo(i)) for i in range(first, first + count)]
    return records + [(f"{prefix}.geo", _geo(i)) for i in range(first, first + count)]


def _check_lake(s3: S3Server, bucket: str, expected: int) -> None:
    """Each table readable; exactly ``expected`` rows per zone; offsets contiguous per
    partition, no duplicate; DuckDB counts the same."""
    lake = open_lake(
        f"s3://{bucket}/lake",
        s3_endpoint_url=s3.endpoint,
        s3_access_key_id=SecretStr(s3.access_key),
        s3_secret_access_key=SecretStr(s3.secret_key),
    )
    for zone in ("clean", "raw"):
        table = open_table(lake, f"{zone}/geo")
        assert table is not None, f"no {zone} table"
        data = table.to_pyarrow_dataset()
        rows = data.to_table(columns=["_partition", "_offset"])
        offsets: dict[int, list[int]] = {}
        for partition, offset in zip(
            rows.column("_partition").to_pylist(), rows.column("_offset").to_pylist(), strict=True
        ):
            offsets.setdefault(partition, []).append(offset)
        assert sum(map(len, offsets.values())) == expected, f"{zone}: wrong number of rows"
        for partition, found in offsets.items():
            assert sorted(found) == list(range(len(found))), f"{zone} p{partition}: gap or dup"
        con = duckdb.connect()
        con.register("data", data)
        count = con.execute("SELECT count(*) FROM data").fetchone()
        assert count == (expected,), f"{zone}: DuckDB counts {count}"


def test_kill_9_mid_file_then_restart_leaves_every_record_once(
    kafka_bootstrap: str, unique: str, s3_server: S3Server, tmp_path: Path
) -> None:
    bucket = f"kill-{unique}"
    _bucket(s3_server, bucket)
    env = _env(kafka_bootstrap, unique, s3_server, bucket)
    topics = [f"s{unique}.clean.geo", f"s{unique}.geo"]
    total = 40_000
    asyncio.run(ensure_topics(KafkaConnection(kafka_bootstrap), topics, PARTITIONS))
    asyncio.run(produce(kafka_bootstrap, _records(unique, 0, total)))
    group = env["PINPIPE_S3_SINK_GROUP_ID"]

    first = ServiceProcess("s3-sink", env, tmp_path / "first.log", "PINPIPE_S3_SINK_PORT").start()
    try:
        done = wait_until(
            lambda: (
                (n := asyncio.run(group_committed(kafka_bootstrap, group, topics))) > 8_000 and n
            ),
            timeout=90,
            what="some files committed",
            interval=0.05,
        )
    finally:
        first.kill()  # kill -9: buffers and a file in flight are lost with the process
    assert done < 2 * total, "everything was written before the kill; use more records"

    second = ServiceProcess("s3-sink", env, tmp_path / "second.log", "PINPIPE_S3_SINK_PORT").start()
    try:
        wait_until(
            lambda: asyncio.run(group_committed(kafka_bootstrap, group, topics)) == 2 * total,
            timeout=120,
            what="every record committed after the restart",
        )
    finally:
        second.kill()
    _check_lake(s3_server, bucket, total)


def _sink_on(
    kafka: str, unique: str, s3: S3Server, bucket: str, tmp_path: Path
) -> tuple[ServiceProcess, str, list[str]]:
    """A sink process on a new bucket of ``s3`` and the test's two geo topics: (the sink, its
    group, the topics)."""
    _bucket(s3, bucket)
    env = _env(kafka, unique, s3, bucket)
    topics = [f"s{unique}.clean.geo", f"s{unique}.geo"]
    asyncio.run(ensure_topics(KafkaConnection(kafka), topics, PARTITIONS))
    sink = ServiceProcess("s3-sink", env, tmp_path / "sink.log", "PINPIPE_S3_SINK_PORT").start()
    return sink, env["PINPIPE_S3_SINK_GROUP_ID"], topics


def test_s3_down_for_a_while_loses_nothing(
    kafka_bootstrap: str, unique: str, own_s3: S3Server, tmp_path: Path
) -> None:
    bucket = f"outage-{unique}"
    sink, group, topics = _sink_on(kafka_bootstrap, unique, own_s3, bucket, tmp_path)
    try:
        asyncio.run(produce(kafka_bootstrap, _records(unique, 0, 5_000)))
        wait_until(
            lambda: asyncio.run(group_committed(kafka_bootstrap, group, topics)) == 10_000,
            timeout=60,
            what="the first records in the lake",
        )
        own_s3.stop()
        asyncio.run(produce(kafka_bootstrap, _records(unique, 5_000, 5_000)))
        wait_until(
            lambda: sink.metric_sum("pinpipe_s3_sink_errors_total") > 0,
            timeout=60,
            what="the sink to meet the outage",
        )
        assert _readyz(sink) == 503, "not ready while the lake is away"
        # A while down: one and the same commit failed again after its backoff (retried).
        wait_until(
            lambda: max(_failed_writes(sink.log).values(), default=0) >= RETRIES_IN_OUTAGE,
            timeout=60,
            what=f"one file's write to fail {RETRIES_IN_OUTAGE} times",
        )
        assert sink.alive, "the sink died during the outage"
        assert _readyz(sink) == 503
        # nothing committed past the outage: the offsets stay where the last durable file ended
        assert asyncio.run(group_committed(kafka_bootstrap, group, topics)) == 10_000
        own_s3.start()
        wait_until(
            lambda: asyncio.run(group_committed(kafka_bootstrap, group, topics)) == 20_000,
            timeout=180,
            what="every record committed after the outage",
        )
        wait_until(lambda: _readyz(sink) == 200, timeout=30, what="the sink ready again")
    finally:
        sink.kill()
    _check_lake(own_s3, bucket, 10_000)


def test_a_sink_assigned_partitions_while_s3_is_down_is_not_ready_until_it_is_back(
    kafka_bootstrap: str, unique: str, own_s3: S3Server, tmp_path: Path
) -> None:
    """An assignment reads each table's positions before the sink consumes: while the lake
    does not answer, the sink waits, alive and not ready (the chaos test met a sink that said
    ready through a whole outage, stuck in that read)."""
    bucket = f"rejoin-{unique}"
    sink, group, topics = _sink_on(kafka_bootstrap, unique, own_s3, bucket, tmp_path)
    try:
        asyncio.run(produce(kafka_bootstrap, _records(unique, 0, 1_000)))
        wait_until(
            lambda: asyncio.run(group_committed(kafka_bootstrap, group, topics)) == 2_000,
            timeout=60,
            what="the first records in the lake",
        )
        assert _readyz(sink) == 200
        own_s3.stop()
        # another member joins the group: the sink is assigned partitions again
        asyncio.run(_join_until(kafka_bootstrap, group, topics, lambda: _readyz(sink) == 503))
        assert sink.alive, "the sink died while the lake was away"
        own_s3.start()
        asyncio.run(produce(kafka_bootstrap, _records(unique, 1_000, 1_000)))
        wait_until(
            lambda: asyncio.run(group_committed(kafka_bootstrap, group, topics)) == 4_000,
            timeout=180,
            what="every record committed after the outage",
        )
        wait_until(lambda: _readyz(sink) == 200, timeout=30, what="the sink ready again")
    finally:
        sink.kill()
    _check_lake(own_s3, bucket, 2_000)


async def _join_until(
    bootstrap: str, group: str, topics: list[str], seen: Callable[[], bool]
) -> None:
    """Be a member of ``group`` (committing nothing) until ``seen()``, then leave it."""
    member = AIOKafkaConsumer(
        *topics, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await member.start()
    try:
        deadline = time.monotonic() + 60
        while not await asyncio.to_thread(seen):
            assert time.monotonic() < deadline, "timed out after 60s waiting for the sink"
            await member.getmany(timeout_ms=250)  # takes part in the group's rebalances
    finally:
        await member.stop()
