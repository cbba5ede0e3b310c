"""Records/s of one cleaner process against a minimal aiokafka loop, in one run.

    make bench              (or: .venv/bin/python -m bench.cleaner_bench --help)

On a local single-node Kafka of its own, the benchmark fills the raw topics bench.pin|geo|user
(4 partitions each) with N records (the real sample rows of ../shared/pinterest-data, cycled,
each given a unique ind), then drains them twice, each time in a process of its own:
1. baseline: bench/minimal_cleaner.py (aiokafka getmany → the same process() → send → commit);
2. the cleaner: `pinpipe cleaner` (exactly-once: one transaction per partition and batch).
Progress is read the same way for both: the consumer group's committed offsets, polled every
100 ms. Rate = records committed between the first and the last poll that saw progress,
divided by that time (process start-up is not counted). Best of --repeat runs each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import GroupCoordinatorNotAvailableError

from bench.local_stack import ROOT, free_port, local_kafka
from shared.kafka_admin import ensure_topics
from shared.topics import DLQ_TOPIC, RECORD_TYPES, clean_topics

SAMPLE = ROOT.parent / "shared" / "pinterest-data" / "raw_union"
SAMPLE_FILES = {"pin": "pinterest_data", "geo": "geolocation_data", "user": "user_data"}
PARTITIONS = 4
RAW_TOPICS = [f"bench.{t}" for t in RECORD_TYPES]
BASELINE_SUFFIX = "-baseline"


def _rows(record_type: str) -> list[dict[str, Any]]:
    path = SAMPLE / f"{SAMPLE_FILES[record_type]}.jsonl"
    if path.is_file():
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [{"ind": 1, "first_name": "a", "last_name": "b", "age": 30}]  # no sample: users only


async def _fill(bootstrap: str, records: int) -> int:
    """Produce ``records`` raw records across the three raw topics; return the total bytes."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=1024 * 1024
    )
    await producer.start()
    total = 0
    try:
        samples = {t: _rows(t) for t in RECORD_TYPES}
        futures = []
        for i in range(records):
            record_type = RECORD_TYPES[i % 3]
            row = dict(samples[record_type][(i // 3) % len(samples[record_type])])
            row["index" if record_type == "pin" else "ind"] = i // 3
            value = orjson.dumps(row)
            total += len(value)
            futures.append(await producer.send(f"bench.{record_type}", value))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return total


async def _committed(admin: AIOKafkaAdminClient, group: str) -> int:
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    except GroupCoordinatorNotAvailableError:  # the offsets topic is still being created
        return 0
    return sum(o.offset for tp, o in offsets.items() if tp.topic in RAW_TOPICS and o.offset > 0)


async def _watch(
    bootstrap: str, group: str, records: int, process: subprocess.Popen[bytes]
) -> float:
    """Poll the group's committed offsets until all records are in; return records/s."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        first: tuple[float, int] | None = None
        deadline = time.monotonic() + 600
        while True:
            done = await _committed(admin, group)
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


def _drain(
    command: list[str], env: dict[str, str], bootstrap: str, group: str, records: int, log: Path
) -> float:
    with open(log, "ab") as out:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=out)
        try:
            return asyncio.run(_watch(bootstrap, group, records, process))
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=300_000, help="default 300000")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each, best kept (2)")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench" / "cleaner.json")
    args = parser.parse_args()

    state = Path(tempfile.mkdtemp(prefix="pinpipe-bench-"))
    with local_kafka(state) as bootstrap:
        outputs = [*clean_topics(), DLQ_TOPIC]
        asyncio.run(
            ensure_topics(
                bootstrap,
                RAW_TOPICS + outputs + [name + BASELINE_SUFFIX for name in outputs],
                PARTITIONS,
            )
        )
        started = time.perf_counter()
        size = asyncio.run(_fill(bootstrap, args.records))
        print(
            f"raw records: {args.records:,} in {len(RAW_TOPICS)} topics x {PARTITIONS} partitions "
            f"({size // args.records} bytes each on average; produced in "
            f"{time.perf_counter() - started:.1f} s)"
        )
        env = {
            **os.environ,
            "PINPIPE_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "PINPIPE_TOPIC_PREFIX": "bench",
            "PINPIPE_TOPIC_PARTITIONS": str(PARTITIONS),
            "PINPIPE_CLEANER_RAW_TOPIC_PATTERN": r"^bench\.(pin|geo|user)$",
            "PINPIPE_LOG_LEVEL": "WARNING",
        }
        baseline: list[float] = []
        cleaner: list[float] = []
        for run in range(args.repeat):
            group = f"bench-minimal-{run}"
            baseline.append(
                _drain(
                    [
                        sys.executable,
                        "-m",
                        "bench.minimal_cleaner",
                        "--bootstrap",
                        bootstrap,
                        "--group",
                        group,
                        f"--out-suffix={BASELINE_SUFFIX}",
                        *RAW_TOPICS,
                    ],
                    env,
                    bootstrap,
                    group,
                    args.records,
                    state / "minimal.log",
                )
            )
            print(f"  run {run + 1}: minimal aiokafka loop  {baseline[-1]:>10,.0f} records/s")
            group = f"bench-cleaner-{run}"
            cleaner_env = {
                **env,
                "PINPIPE_CLEANER_APP_ID": group,
                "PINPIPE_CLEANER_WEB_PORT": str(free_port(38100)),
            }
            cleaner.append(
                _drain(
                    [sys.executable, "-m", "cli.main", "cleaner"],
                    cleaner_env,
                    bootstrap,
                    group,
                    args.records,
                    state / "cleaner.log",
                )
            )
            print(f"  run {run + 1}: pinpipe cleaner        {cleaner[-1]:>10,.0f} records/s")
        best_baseline, best_cleaner = max(baseline), max(cleaner)
        ratio = best_cleaner / best_baseline
        print(f"1. minimal aiokafka loop (at-least-once): {best_baseline:>10,.0f} records/s")
        print(
            f"2. pinpipe cleaner (exactly-once):         {best_cleaner:>10,.0f} records/s "
            f"({ratio:.0%} of the minimal loop; targets >= 50% and >= 20,000/s)"
        )
        results = {
            "records": args.records,
            "baseline_records_per_s": [round(r) for r in baseline],
            "cleaner_records_per_s": [round(r) for r in cleaner],
            "ratio_best": round(ratio, 3),
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
        print(f"written to {args.out} (logs in {state})")


if __name__ == "__main__":
    main()
