"""The ingest API killed with SIGKILL in the middle of the emulator's load loses no acknowledged
record: the real emulator (a process, batch and stream paths) retries what the dead API did
not answer, a new API process takes over on the same port, and every post the emulator counted
as written is in the raw topics (duplicates from retries allowed, losses not)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from shared.topics import RECORD_TYPES, raw_batch_topic, raw_stream_topic
from tests.conftest import wait_until
from tests.integration.conftest import read_committed
from tests.processes import ServiceProcess
from tests.servers import REPO_ROOT

pytestmark = pytest.mark.integration
POSTS = 400  # the emulator's --count
RATE = 40  # posts per second
KILL_AFTER = 100  # posts the API has written (all six records) when it is killed
SUMMARY = re.compile(r"posted (\d+) posts, retried (\d+) requests, failed (\d+) posts")


def _content(value: object) -> str:
    return json.dumps(value, sort_keys=True)


def test_sigkill_mid_load_loses_no_acknowledged_record(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    prefix = f"kill{unique}"
    topics = [
        topic(prefix, record_type)
        for record_type in RECORD_TYPES
        for topic in (raw_batch_topic, raw_stream_topic)
    ]
    first = ServiceProcess(
        "ingest-api",
        {
            **os.environ,
            "PINPIPE_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "PINPIPE_TOPIC_PREFIX": prefix,
            "PINPIPE_TOPIC_PARTITIONS": "2",
        },
        tmp_path / "api-1.log",
        "PINPIPE_INGEST_PORT",
    )
    env = {
        **first.env,
        "PINPIPE_SOURCE_DB_URL": f"sqlite:///{tmp_path / 'source.db'}",
        "PINPIPE_EMULATOR_API_URL": first.url,
        "PYTHONPATH": str(REPO_ROOT),
    }
    pinpipe = [sys.executable, "-m", "cli.main"]
    subprocess.run(
        [*pinpipe, "emulator", "seed-db", "--rows", "150", "--seed", "11"],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
    )
    sent_log = tmp_path / "sent.jsonl"
    second: ServiceProcess | None = None
    emulator: subprocess.Popen[bytes] | None = None

    def records_written() -> float:
        return sum(
            first.metric("pinpipe_ingest_api_records_total", topic=topic, status="ok")
            for topic in topics
        )

    try:
        first.start()
        with open(tmp_path / "emulator.out", "wb") as out:
            emulator = subprocess.Popen(
                [
                    *pinpipe,
                    "emulator",
                    "run",
                    "--mode",
                    "both",
                    "--count",
                    str(POSTS),
                    "--rate",
                    str(RATE),
                    "--seed",
                    "5",
                    "--sent-log",
                    str(sent_log),
                    "--no-probes",
                ],
                cwd=tmp_path,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        # each post is six records: pin, geo and user, on the batch and the stream paths
        written = wait_until(
            lambda: (n := records_written()) >= KILL_AFTER * 6 and n,
            timeout=60,
            what=f"the API to write {KILL_AFTER} posts",
            interval=0.05,
        )
        first.kill()  # SIGKILL: requests in flight are cut, nothing is flushed
        assert emulator.poll() is None, "the emulator finished before the kill: more posts"
        assert written < POSTS * 6

        second = ServiceProcess(
            "ingest-api", first.env, tmp_path / "api-2.log", "PINPIPE_INGEST_PORT", port=first.port
        ).start()
        assert emulator.wait(timeout=120) == 0, (tmp_path / "emulator.out").read_text()
    finally:
        for process in (first, second):
            if process is not None and process.alive:
                process.kill()
        if emulator is not None and emulator.poll() is None:
            emulator.kill()
            emulator.wait()

    output = (tmp_path / "emulator.out").read_text()
    summary = SUMMARY.search(output)
    assert summary, output[-2000:]
    posted, retried, failed = map(int, summary.groups())
    assert (posted, failed) == (POSTS, 0), summary.group(0)
    assert retried > 0, "the emulator never met the dead API"

    # What the emulator was told was written, by (topic, content) ...
    sent: Counter[tuple[str, str]] = Counter()
    posts = [json.loads(line) for line in sent_log.read_text().splitlines()]
    assert len(posts) == POSTS
    for post in posts:
        for record_type in RECORD_TYPES:
            for topic in (
                raw_batch_topic(prefix, record_type),
                raw_stream_topic(prefix, record_type),
            ):
                sent[(topic, _content(post[record_type]))] += 1
    # ... is in Kafka, at least as often (a retried request may have been written twice).
    stored = Counter(
        (m.topic, _content(json.loads(m.value)))
        for m in asyncio.run(read_committed(kafka_bootstrap, topics))
    )
    missing = sent - stored
    assert not missing, f"{sum(missing.values())} records lost, e.g. {list(missing)[:3]}"
    assert set(stored) == set(sent), "records in Kafka that the emulator never sent"
