"""What the throughput benchmarks share: the sample rows, and progress read from a consumer
group's committed offsets (the same way for a service and its baseline)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Sequence
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
    bootstrap: str,
    group: str,
    topics: list[str],
    records: int,
    process: subprocess.Popen[bytes] | Sequence[subprocess.Popen[bytes]],
) -> float:
    """Poll the group's committed offsets until all records are in; return records/s. Fails
    when ``process`` (or one of the group's processes) exits first."""
    processes = [process] if isinstance(process, subprocess.Popen) else list(process)
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
            if exited := [p.returncode for p in processes if p.poll() is not None]:
                raise RuntimeError(f"{group} exited with {exited[0]}")
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
    env: dict[str, str] | Sequence[dict[str, str]],
    bootstrap: str,
    group: str,
    topics: list[str],
    records: int,
    log: Path,
) -> float:
    """Run ``command`` (a consumer of ``topics`` in ``group``), once per environment of ``env``
    (one process each, as replicas), until its group has committed ``records``; its records/s
    (see watch_group). The processes are stopped at the end."""
    environments = [env] if isinstance(env, dict) else list(env)
    processes: list[subprocess.Popen[bytes]] = []
    with open(log, "ab") as out:
        try:
            for environment in environments:
                processes.append(
                    subprocess.Popen(command, env=environment, cwd=ROOT, stdout=out, stderr=out)
                )
            return asyncio.run(watch_group(bootstrap, group, topics, records, processes))
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
