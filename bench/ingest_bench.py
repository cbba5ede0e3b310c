"""Ingest API throughput and latency against a plain aiokafka producer, in one run.

    make bench              (or: .venv/bin/python -m bench.ingest_bench --help)

What it measures, on one uvicorn worker of the ingest API and a local single-node Kafka:
1. baseline: a plain aiokafka producer (acks=all, idempotent) sending N records from one process;
2. POST /topics/bench.pin with 500 records per request (records/s), and its ratio to 1;
3. POST /topics/bench.pin with 1 record per request, as fast as it answers (requests/s);
4. a steady 1,000 single-record requests/s: p50 / p99 latency.
HTTP load comes from vegeta (a Go load generator: constant rates, exact latency percentiles).
Records are real pin rows of ../shared/pinterest-data when present.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from bench.local_stack import ROOT, local_stack

SAMPLE = ROOT.parent / "shared" / "pinterest-data" / "raw_union" / "pinterest_data.jsonl"
TOPIC = "bench.pin"


def _records(count: int) -> list[dict[str, Any]]:
    if SAMPLE.is_file():
        rows = [json.loads(line) for line in SAMPLE.read_text().splitlines()]
    else:
        rows = [
            {"index": i, "title": "t" * 80, "description": "d" * 300, "follower_count": "12k"}
            for i in range(100)
        ]
    return [rows[i % len(rows)] for i in range(count)]


async def _baseline(bootstrap: str, values: list[bytes], linger_ms: int) -> float:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=linger_ms,
        max_batch_size=256 * 1024,
    )
    await producer.start()
    try:
        await producer.send_and_wait(TOPIC, values[0])  # connect and fetch metadata first
        started = time.perf_counter()
        futures = [await producer.send(TOPIC, value) for value in values]
        await asyncio.gather(*futures)
        return len(values) / (time.perf_counter() - started)
    finally:
        await producer.stop()


def _vegeta(
    vegeta: str, target: str, body: Path, *, rate: str, duration: str, workers: int
) -> dict[str, Any]:
    """Run one vegeta attack; return its JSON report."""
    targets = f"POST {target}\nContent-Type: application/vnd.kafka.json.v2+json\n@{body}\n"
    attack = subprocess.run(
        [
            vegeta,
            "attack",
            f"-rate={rate}",
            f"-duration={duration}",
            f"-max-workers={workers}",
            f"-workers={min(workers, 32)}",
            "-timeout=30s",
            "-keepalive=true",
        ],
        input=targets.encode(),
        capture_output=True,
        check=True,
    )
    report = subprocess.run(
        [vegeta, "report", "-type=json"], input=attack.stdout, capture_output=True, check=True
    )
    parsed: dict[str, Any] = json.loads(report.stdout)
    return parsed


def _install_vegeta() -> str:
    found = subprocess.run(
        ["bash", str(ROOT / "bench" / "vegeta.sh")], capture_output=True, text=True, check=True
    )
    return found.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--records", type=int, default=200_000, help="records of the baseline (default 200000)"
    )
    parser.add_argument(
        "--seconds", type=int, default=10, help="length of each HTTP attack (default 10)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench" / "ingest.json")
    args = parser.parse_args()

    vegeta = _install_vegeta()
    results: dict[str, Any] = {}
    with local_stack(prefix="bench", partitions=4) as stack:
        url, bootstrap, state = stack.api_url, stack.bootstrap, stack.state
        records = _records(args.records)
        values = [json.dumps(r).encode() for r in records]
        average = sum(map(len, values)) // len(values)
        print(f"records: {len(values)} real pin rows, {average} bytes each on average")

        baseline = asyncio.run(_baseline(bootstrap, values, linger_ms=2))
        results["baseline_records_per_s"] = round(baseline)
        print(f"1. plain aiokafka producer:           {baseline:>10,.0f} records/s")

        bodies = state / "batch.json"
        bodies.write_text(json.dumps({"records": [{"value": r} for r in records[:500]]}))
        batched = _vegeta(
            vegeta,
            f"{url}/topics/{TOPIC}",
            bodies,
            rate="0",
            duration=f"{args.seconds}s",
            workers=4,
        )
        batched_rps = batched["throughput"] * 500
        results["batched_500"] = {
            "records_per_s": round(batched_rps),
            "ratio_to_baseline": round(batched_rps / baseline, 3),
            "status_codes": batched["status_codes"],
            "p99_ms": batched["latencies"]["99th"] / 1e6,
        }
        print(
            f"2. POST 500 records/request:          {batched_rps:>10,.0f} records/s "
            f"({batched_rps / baseline:.0%} of the plain producer; "
            f"p99 {batched['latencies']['99th'] / 1e6:.1f} ms)"
        )

        single = state / "single.json"
        single.write_text(json.dumps({"records": [{"value": records[0]}]}))
        fastest = _vegeta(
            vegeta,
            f"{url}/topics/{TOPIC}",
            single,
            rate="0",
            duration=f"{args.seconds}s",
            workers=64,
        )
        results["single_max"] = {
            "requests_per_s": round(fastest["throughput"]),
            "status_codes": fastest["status_codes"],
        }
        print(f"3. POST 1 record/request, max:        {fastest['throughput']:>10,.0f} requests/s")

        steady = _vegeta(
            vegeta,
            f"{url}/topics/{TOPIC}",
            single,
            rate="1000/s",
            duration=f"{args.seconds}s",
            workers=64,
        )
        p50, p99 = steady["latencies"]["50th"] / 1e6, steady["latencies"]["99th"] / 1e6
        results["steady_1000"] = {
            "p50_ms": round(p50, 2),
            "p99_ms": round(p99, 2),
            "achieved_rps": round(steady["throughput"]),
            "status_codes": steady["status_codes"],
        }
        print(
            f"4. steady 1,000 requests/s:           p50 {p50:.2f} ms, p99 {p99:.2f} ms "
            f"(achieved {steady['throughput']:,.0f}/s; status {steady['status_codes']})"
        )
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
        print(f"written to {args.out}")


if __name__ == "__main__":
    main()
