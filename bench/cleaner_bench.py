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
import sys
import tempfile
import time
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

from bench.local_stack import ROOT, free_port, local_kafka
from bench.progress import drain, sample_rows
from shared.kafka_admin import ensure_topics
from shared.kafka_security import KafkaConnection
from shared.topics import DLQ_TOPIC, RECORD_TYPES, clean_topics

PARTITIONS = 4
RAW_TOPICS = [f"bench.{t}" for t in RECORD_TYPES]
BASELINE_SUFFIX = "-baseline"


async def _fill(bootstrap: str, records: int) -> int:
    """Produce ``records`` raw records across the three raw topics; return the total bytes."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=1024 * 1024
    )
    await producer.start()
    total = 0
    try:
        samples = {t: sample_rows(t) for t in RECORD_TYPES}
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
                KafkaConnection(bootstrap),
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
                drain(
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
                    RAW_TOPICS,
                    args.records,
                    state / "minimal.log",
                )
            )
            print(f"  run {run + 1}: minimal aiokafka loop  {baseline[-1]:>10,.0f} records/s")
            group = f"bench-cleaner-{run}"
            cleaner_env = {
                **env,
                "PINPIPE_CLEANER_APP_ID": group,
                "PINPIPE_CLEANER_PORT": str(free_port(38100)),
            }
            cleaner.append(
                drain(
                    [sys.executable, "-m", "cli.main", "cleaner"],
                    cleaner_env,
                    bootstrap,
                    group,
                    RAW_TOPICS,
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
