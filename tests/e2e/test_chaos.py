"""Faults that overlap, on the whole local pipeline, with nothing restarted by hand.

``pinpipe up --detach`` runs Kafka, the four services and the emulator (posting steadily on both
routes) under its supervisor, on a lake in an S3 server of the test's own. In an order and with
timings drawn from a seed (printed; ``PINPIPE_CHAOS_SEED=<seed>`` replays it), each service is
killed with SIGKILL, the broker is killed while one of them is starting again, and the S3 server
is stopped for 30 s across some of those kills. Only the supervisor restarts anything.

Then the emulator is stopped and the pipeline drained, and: the emulator failed no post; every
post it was told was written is in the raw zone; no offset is twice in either zone and the raw
zone has no gap; clean + DLQ = raw; every live answer equals the batch answer over the lake.
Ports are below the kernel's ephemeral range, so that a client retrying a dead server's port
can never connect to itself and keep the restarted server from binding it.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import SecretStr

from batch.config import BatchSettings
from batch.query import run_questions
from batch.questions import QUESTIONS
from shared.lake import Lake, Zone
from shared.models import DlqEntry
from shared.topics import DLQ_TOPIC, RECORD_TYPES, raw_batch_topic, raw_stream_topic, raw_topics
from tests.conftest import wait_until
from tests.lake_rows import zone_rows
from tests.pipeline_env import PORT_VARIABLES, pipeline_env
from tests.servers import S3_PORT_OFFSETS, KafkaServer, S3Server, free_port

pytestmark = pytest.mark.e2e
S3_OUTAGE_SECONDS = 30.0
SERVICES = ["ingest-api", "cleaner", "aggregator", "s3-sink", "emulator"]


@dataclass
class Stack:
    """A supervised pipeline in ``tmp`` (its own ``var/``), driven through the CLI."""

    tmp: Path
    env: dict[str, str]
    s3: S3Server
    bucket: str

    def pinpipe(self, *args: str, timeout: float = 240, check: bool = True) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "cli.main", *args],
            cwd=self.tmp,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check:
            assert result.returncode == 0, (
                f"pinpipe {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
            )
        return result.stdout

    def status(self) -> dict[str, dict[str, Any]]:
        """``pinpipe status --json``, by service."""
        state = json.loads(self.pinpipe("status", "--json", check=False))
        assert state["up"], "the supervisor is gone"
        return {s["name"]: s for s in state["services"]}

    def children(self) -> dict[str, dict[str, Any]]:
        """The supervisor's own view (``var/run/stack.json``), read at once: pids and states
        change faster than a ``pinpipe status`` (which probes every service) answers."""
        state = json.loads((self.tmp / "var" / "run" / "stack.json").read_text())
        return {c["name"]: c for c in state["children"]}

    def pid(self, name: str) -> int | None:
        identity = self.children()[name]["identity"]
        return int(identity["pid"]) if identity else None

    def kill(self, name: str, signum: int = signal.SIGKILL) -> int:
        pid = wait_until(lambda: self.pid(name), timeout=120, what=f"{name} running")
        os.kill(pid, signum)
        return pid

    def restarted(self, name: str, old_pid: int) -> dict[str, Any]:
        """Wait until the supervisor runs ``name`` again (a new pid); its state then."""

        def again() -> dict[str, Any] | None:
            entry = self.children()[name]
            pid = entry["identity"]["pid"] if entry["identity"] else None
            return entry if pid not in (None, old_pid) else None

        return wait_until(again, timeout=120, interval=0.05, what=f"{name} restarted")

    @property
    def sent_log(self) -> Path:
        return self.tmp / "sent.jsonl"

    def sent_lines(self) -> int:
        if not self.sent_log.exists():
            return 0
        return self.sent_log.read_bytes().count(b"\n")

    def more_posts(self, count: int, timeout: float = 180) -> None:
        """Wait until the emulator has logged ``count`` more posts as written."""
        target = self.sent_lines() + count
        wait_until(
            lambda: self.sent_lines() >= target,
            timeout=timeout,
            interval=0.2,
            what=f"{count} more posts written",
        )

    def lake(self) -> Lake:
        return BatchSettings(
            lake_url=self.env["PINPIPE_LAKE_URL"],
            s3_endpoint_url=self.s3.endpoint,
            s3_access_key_id=SecretStr(self.s3.access_key),
            s3_secret_access_key=SecretStr(self.s3.secret_key),
        ).open_lake()

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.env[PORT_VARIABLES[service]]}"


@pytest.fixture
def stack(tmp_path: Path, unique: str) -> Iterator[Stack]:
    # below 32768, the ephemeral range: see the module's docstring
    broker_port = free_port((0, 1), start=19092)
    s3 = S3Server(free_port(S3_PORT_OFFSETS, start=11333), tmp_path / "s3")
    ports = {name: free_port(start=17000 + 100 * i) for i, name in enumerate(PORT_VARIABLES)}
    prefix = f"chaos{unique}"
    env = {
        **pipeline_env(
            tmp_path,
            f"127.0.0.1:{broker_port}",
            ports,
            f"s3://chaos-{unique}/lake",
            s3.endpoint,
            (s3.access_key, s3.secret_key),
        ),
        "PINPIPE_TOPIC_PREFIX": prefix,
        "PINPIPE_EMULATOR_MODE": "both",
        "PINPIPE_EMULATOR_RATE": "12",
        "PINPIPE_EMULATOR_BATCH_SIZE": "3",
        "PINPIPE_EMULATOR_SENT_LOG": str(tmp_path / "sent.jsonl"),
        "PINPIPE_S3_SINK_MAX_OPEN_SECONDS": "2",
        "PINPIPE_RETRY_MAX_BACKOFF_SECONDS": "3",
    }
    s3.start()
    stack = Stack(tmp_path, env, s3, f"chaos-{unique}")
    try:
        lake_fs = stack.lake().fs
        wait_until(lambda: _try_mkdir(lake_fs, stack.bucket), timeout=60, what="the bucket")
        stack.pinpipe("emulator", "seed-db", "--rows", "400", "--seed", "5")
        stack.pinpipe("up", "--detach")
        yield stack
    finally:
        stack.pinpipe("down", check=False)
        for log in sorted((tmp_path / "var" / "log").glob("*.log")):
            lines = log.read_text(errors="replace").splitlines()
            print(f"--- {log.name} (tail)\n" + "\n".join(lines[-20:]))
        s3.stop()
        KafkaServer(broker_port, tmp_path / "var" / "kafka" / f"run-{broker_port}").stop()


def _try_mkdir(fs: Any, bucket: str) -> bool:
    try:
        fs.mkdir(bucket)
    except FileExistsError:
        return True
    except Exception:
        return False
    return True


def test_the_pipeline_rides_out_overlapping_faults(stack: Stack) -> None:
    seed = int(os.environ.get("PINPIPE_CHAOS_SEED") or random.randrange(1_000_000))
    print(f"chaos seed {seed} (replay with PINPIPE_CHAOS_SEED={seed})")
    rng = random.Random(seed)
    victims = rng.sample(SERVICES, len(SERVICES))
    broker_with = rng.choice([v for v in victims if v != "emulator"])
    s3_from = rng.randrange(len(victims))  # the S3 outage starts before this kill
    print(
        f"schedule: kill {victims}; broker dies while {broker_with} starts; S3 down from #{s3_from}"
    )

    stack.more_posts(40)
    s3_stopped_at: float | None = None
    for number, victim in enumerate(victims):
        if number == s3_from:
            stack.s3.stop()
            s3_stopped_at = time.monotonic()
        old = stack.kill(victim)
        entry = stack.restarted(victim, old)
        if victim == broker_with:
            # the broker goes while the service is starting again (not ready yet)
            assert entry["state"] == "starting", entry
            stack.restarted("kafka", stack.kill("kafka"))
        stack.more_posts(rng.randint(10, 50))
    if s3_stopped_at is not None:
        sink_ready = stack.url("s3-sink") + "/readyz"
        wait_until(lambda: not _answers(sink_ready), timeout=60, what="the sink to see the outage")
        wait_until(
            lambda: time.monotonic() - s3_stopped_at >= S3_OUTAGE_SECONDS,
            timeout=S3_OUTAGE_SECONDS + 5,
            what="the end of the S3 outage",
        )
        stack.s3.start()
    stack.more_posts(30)

    # Stop the load: SIGTERM ends the emulator's run for good (the supervisor leaves it).
    emulator = stack.kill("emulator", signal.SIGTERM)
    wait_until(
        lambda: stack.children()["emulator"]["state"] == "done", timeout=60, what="emulator done"
    )
    emulator_log = (stack.tmp / "var" / "log" / "emulator.log").read_text()
    assert "post refused for good" not in emulator_log
    summaries = [line for line in emulator_log.splitlines() if line.startswith("posted ")]
    assert summaries, f"the emulator (pid {emulator}) printed no summary"
    assert summaries[-1].endswith("failed 0 posts"), summaries[-1]
    prefix = stack.env["PINPIPE_TOPIC_PREFIX"]
    sent = _sent_records(stack.sent_log, prefix)

    # Drained: every raw record is in the lake, and each was cleaned or dead-lettered.
    lake = stack.lake()
    ends = asyncio.run(_end_offsets(stack.env["PINPIPE_KAFKA_BOOTSTRAP_SERVERS"], prefix))
    wait_until(
        lambda: len(_zone(lake, "raw")) == sum(ends.values()),
        timeout=180,
        interval=2,
        what=f"the raw zone to hold all {sum(ends.values())} raw records",
    )
    raw = _zone(lake, "raw")
    dead = asyncio.run(_dead_letters(stack.env["PINPIPE_KAFKA_BOOTSTRAP_SERVERS"], prefix))
    wait_until(
        lambda: len(_zone(lake, "clean")) + len(dead) >= len(raw),
        timeout=180,
        interval=2,
        what="the clean zone to catch up",
    )
    clean = _zone(lake, "clean")

    # No offset twice in either zone; the raw zone has every offset of every partition.
    for zone, rows in (("raw", raw), ("clean", clean)):
        places = Counter((r["_topic"], r["_partition"], r["_offset"]) for r in rows)
        assert [p for p, n in places.items() if n > 1] == [], f"duplicate offsets in {zone}"
    for (topic, partition), end in ends.items():
        offsets = sorted(
            r["_offset"] for r in raw if (r["_topic"], r["_partition"]) == (topic, partition)
        )
        assert offsets == list(range(end)), f"gap in the raw zone's {topic}-{partition}"
    assert len(clean) + len(dead) == len(raw), (len(clean), len(dead), len(raw))

    # Every record the emulator was told was written is in the raw zone (retries may add more).
    stored = Counter((r["_topic"], _canonical(r["value"])) for r in raw)
    missing = Counter(sent) - stored
    assert not missing, f"{sum(missing.values())} acknowledged records are not in the lake"
    assert len(sent) >= 3 * 2 * 100, "the load was too small to prove anything"

    # Every live answer equals the batch answer over the lake.
    aggregates = stack.url("aggregator")

    def live_equals_batch() -> bool:
        batch = run_questions(lake, list(QUESTIONS), "standard")
        for name, (columns, rows) in batch.items():
            body = httpx.get(f"{aggregates}/aggregates/{name}", timeout=10).json()
            if [tuple(row[c] for c in columns) for row in body.get("rows", [])] != rows:
                return False
        return True

    wait_until(live_equals_batch, timeout=180, interval=2, what="live == batch for every question")
    restarts = {name: s["restarts"] for name, s in stack.status().items()}
    assert all(restarts[name] >= 1 for name in [*SERVICES, "kafka"]), restarts


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _canonical(value: bytes | str) -> str:
    return json.dumps(json.loads(value), sort_keys=True)


def _sent_records(path: Path, prefix: str) -> list[tuple[str, str]]:
    """(raw topic, canonical record) of every post the emulator logged as written, on both
    routes; a line cut short by a kill -9 is skipped."""
    posts = []
    for line in path.read_text().splitlines():
        try:
            posts.append(json.loads(line))
        except ValueError:
            continue
    return [
        (topic, _canonical(json.dumps(post[record_type])))
        for post in posts
        for record_type in RECORD_TYPES
        if record_type in post
        for topic in (raw_batch_topic(prefix, record_type), raw_stream_topic(prefix, record_type))
    ]


def _zone(lake: Lake, zone: Zone) -> list[dict[str, Any]]:
    return zone_rows(
        lake, zone, ["_topic", "_partition", "_offset", *(["value"] if zone == "raw" else [])]
    )


async def _partitions(bootstrap: str, topics: list[str]) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    return [
        TopicPartition(entry["topic"], p["partition"])
        for entry in described
        for p in entry["partitions"]
    ]


async def _end_offsets(bootstrap: str, prefix: str) -> dict[tuple[str, int], int]:
    tps = await _partitions(bootstrap, raw_topics(prefix))
    assert len(tps) == len(raw_topics(prefix)) * 4, tps
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(tps)
        return {(tp.topic, tp.partition): offset for tp, offset in ends.items()}
    finally:
        await consumer.stop()


async def _dead_letters(bootstrap: str, prefix: str) -> list[DlqEntry]:
    """The DLQ's committed entries for this test's raw topics."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, isolation_level="read_committed", enable_auto_commit=False
    )
    tps = await _partitions(bootstrap, [DLQ_TOPIC])
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        entries: list[DlqEntry] = []
        pending = [tp for tp in tps if ends[tp] > 0]
        while pending:
            for messages in (await consumer.getmany(timeout_ms=1000)).values():
                entries += [DlqEntry.model_validate_json(m.value or b"") for m in messages]
            pending = [tp for tp in pending if await consumer.position(tp) < ends[tp]]
        sources = set(raw_topics(prefix))
        return [e for e in entries if e.source_topic in sources]
    finally:
        await consumer.stop()
