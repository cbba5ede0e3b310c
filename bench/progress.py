"""What the throughput benchmarks share: the sample rows, and progress read from a consumer
group's committed offsets (the same way for a service and its baseline)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import GroupCoordinatorNotAvailableError

from bench.local_stack import ROOT

SAMPLE = ROOT.parent / "shared" / "pinterest-data" / "raw_union"
SAMPLE_FILES = {"pin": "pinterest_data", "geo": "geolocation_data", "user": "user_data"}


def sample_rows(record_type: str) -> list[dict[str, Any]]:
    path = SAMPLE / f"{SAMPLE_FILES[record_type]}.jsonl"
    if path.is_file():
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [{"ind": 1, "first_name": "a", "last_name": "b", "age": 30}]  # no sample: users only


async def _committed(admin: AIOKafkaAdminClient, group: str, topics: list[str]) -> int:
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    except GroupCoordinatorNotAvailableError:  # the offsets topic is still being created
        return 0
    return sum(o.offset for tp, o in offsets.items() if tp.topic in topics and o.offset > 0)


async def watch_group(
    bootstrap: str, group: str, topics: list[str], records: int, process: subprocess.Popen[bytes]
) -> float:
    """Poll the group's committed offsets until all records are in; return records/s."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        first: tuple[float, int] | None = None
        deadline = time.monotonic() + 600
        while True:
            done = await _committed(admin, group, topics)
            now = time.perf_counter()
            if first is None and done > 0:
                first = (now, done)
            if done >= records:
                break
            if process.poll() is not None:
                raise RuntimeError(f"{group} exited with {process.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{group}: {done} of {records} after 600 s")
            await asyncio.sleep(0.1)
        assert first is not None
        if done == first[1]:
            raise RuntimeError(f"{group}: everything committed before the first poll; use more")
        return (done - first[1]) / (now - first[0])
    finally:
        await admin.close()


def drain(
    command: list[str],
    env: dict[str, str],
    bootstrap: str,
    group: str,
    topics: list[str],
    records: int,
    log: Path,
) -> float:
    """Run ``command`` (a consumer of ``topics`` in ``group``) until its group has committed
    ``records``; its records/s (see watch_group). The process is stopped at the end."""
    with open(log, "ab") as out:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=out)
        try:
            return asyncio.run(watch_group(bootstrap, group, topics, records, process))
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
