"""Events/s of one aggregator process against Faust's own per-event ceiling, of two replicas,
and freshness at a steady 1,000 posts/s, in one run.

    make bench              (or: .venv/bin/python -m bench.aggregator_bench --help)

On a local single-node Kafka of its own, the clean topics (4 partitions each) are filled with
--posts posts, each a pin, a geo and a user record (the real sample rows, cleaned, each post a
new ind: every event changes its post, the aggregator's worst case). Then, each in a process of
its own, the topics are drained by:
1. baselines: bench/faust_baseline.py, a Faust worker doing nothing per event, then one that
   writes each record to a RocksDB table with a changelog (the cost any per-event table has);
2. the aggregator: `pinpipe aggregator` (the posts table on RocksDB, its changelog, the
   aggregates). The baseline and the aggregator run --repeat times each, in turn (a new
   group each time), and the best of each counts: this machine's noise moves one run by 20%.
   Then two aggregator replicas in one group, each a process (the rebalance as the second
   joins is in the time).
Rate = events committed by the group between the first and the last poll that saw progress.
3. Freshness: with the aggregator caught up, new posts are produced at a steady --rate posts/s
   for --seconds; p50/p99 of `pinpipe_aggregator_freshness_seconds` (a record's timestamp, set
   when it is produced, to the moment the aggregates include it) over that phase, interpolated
   within histogram buckets as Prometheus' histogram_quantile does.
Targets: one aggregator >= 75% of the Faust worker doing nothing; freshness p99 <= 1 s.
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

import httpx
import orjson
from aiokafka import AIOKafkaProducer

from bench.local_stack import ROOT, free_port, local_kafka
from bench.metrics_text import histogram, quantile
from bench.progress import drain, sample_rows
from shared.cleaning import clean
from shared.kafka_admin import ensure_topics
from shared.kafka_security import KafkaConnection
from shared.topics import RECORD_TYPES, clean_topic, clean_topics

PARTITIONS = 4
FRESHNESS = "pinpipe_aggregator_freshness_seconds"


class Posts:
    """Clean records of new posts: the sample rows cleaned once, given fresh inds."""

    def __init__(self) -> None:
        self.rows = {t: [clean(t, raw) for raw in sample_rows(t)] for t in RECORD_TYPES}
        self.next_ind = 10_000_000

    def take(self, count: int) -> list[tuple[str, bytes, bytes]]:
        out = []
        for _ in range(count):
            ind = self.next_ind
            self.next_ind += 1
            for record_type in RECORD_TYPES:
                rows = self.rows[record_type]
                record = {**rows[ind % len(rows)], "ind": ind}
                out.append((clean_topic(record_type), str(ind).encode(), orjson.dumps(record)))
        return out


async def _fill(bootstrap: str, records: list[tuple[str, bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=1024 * 1024
    )
    await producer.start()
    try:
        futures = [await producer.send(t, value, key=key) for t, key, value in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def _steady(bootstrap: str, posts: Posts, rate: int, seconds: float) -> int:
    """New posts at ``rate`` posts/s for ``seconds``, in 10 ms steps; records sent."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=1)
    await producer.start()
    sent = 0
    try:
        start = time.perf_counter()
        step = 0
        while (elapsed := time.perf_counter() - start) < seconds:
            due = int(rate * (elapsed + 0.01)) - sent // 3
            for t, key, value in posts.take(max(due, 0)):
                await producer.send(t, value, key=key)
                sent += 1
            step += 1
            await asyncio.sleep(max(0.0, start + step * 0.01 - time.perf_counter()))
        await producer.flush()
    finally:
        await producer.stop()
    return sent


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the aggregator exited; see {log}")
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the aggregator was not ready in 120 s; see {log}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--posts", type=int, default=50_000, help="posts to drain (50000)")
    parser.add_argument("--rate", type=int, default=1_000, help="steady posts/s (1000)")
    parser.add_argument("--seconds", type=float, default=30, help="steady phase length (30)")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each drain, best kept (2)")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench" / "aggregator.json")
    args = parser.parse_args()

    state = Path(tempfile.mkdtemp(prefix="pinpipe-bench-"))
    events = args.posts * 3
    posts = Posts()
    with local_kafka(state) as bootstrap:
        asyncio.run(ensure_topics(KafkaConnection(bootstrap), clean_topics(), PARTITIONS))
        started = time.perf_counter()
        asyncio.run(_fill(bootstrap, posts.take(args.posts)))
        print(f"clean records: {events:,} ({args.posts:,} posts) in "
              f"{time.perf_counter() - started:.1f} s")  # fmt: skip
        env = {
            **os.environ,
            "PINPIPE_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "PINPIPE_TOPIC_PARTITIONS": str(PARTITIONS),
            "PINPIPE_LOG_LEVEL": "WARNING",
        }

        def faust_baseline(group: str, *flags: str) -> float:
            command = [
                sys.executable, "-m", "bench.faust_baseline", "--bootstrap", bootstrap,
                "--group", group, "--datadir", str(state / group), "--partitions", str(PARTITIONS),
                *flags,
            ]  # fmt: skip
            return drain(
                command, env, bootstrap, group, clean_topics(), events, state / f"{group}.log"
            )

        command = [sys.executable, "-m", "cli.main", "aggregator"]

        def aggregator_env(app_id: str, port: int) -> dict[str, str]:
            return {
                **env,
                "PINPIPE_AGGREGATOR_APP_ID": app_id,
                "PINPIPE_AGGREGATOR_DATADIR": str(state / app_id / str(port)),
                "PINPIPE_AGGREGATOR_PORT": str(port),
                "PINPIPE_AGGREGATOR_INTERNAL_PORT": str(port + 10),
            }

        port = free_port(28001)
        baselines, aggregators = [], []
        for run in range(args.repeat):
            baselines.append(faust_baseline(f"bench-faust-baseline-{run}"))
            print(f"   Faust, nothing per event (run {run + 1}):  {baselines[-1]:>8,.0f} events/s")
            app_id = f"bench-aggregator-{run}"
            drained = drain(
                command, aggregator_env(app_id, port), bootstrap, app_id, clean_topics(), events,
                state / f"{app_id}.log",
            )  # fmt: skip
            aggregators.append(drained)
            print(f"   pinpipe aggregator (run {run + 1}):      {aggregators[-1]:>8,.0f} events/s")
        baseline, aggregator = max(baselines), max(aggregators)
        print(f"1. Faust, nothing per event:  {baseline:>10,.0f} events/s (best of {args.repeat})")
        writes = faust_baseline("bench-faust-table-write", "--table-write")
        print(
            f"   Faust, one table write per event (RocksDB + changelog): {writes:>10,.0f} events/s"
            " (the ceiling of any per-event Faust table)"
        )
        print(
            f"2. pinpipe aggregator:         {aggregator:>10,.0f} events/s "
            f"= {aggregator / baseline:.0%} of Faust's ceiling (target: >= 75%)"
        )
        two_ports = (free_port(28101), free_port(28201))
        two = drain(
            command, [aggregator_env("bench-aggregator-2x", p) for p in two_ports], bootstrap,
            "bench-aggregator-2x", clean_topics(), events, state / "aggregator-2x.log",
        )  # fmt: skip
        print(
            f"   two aggregator replicas:    {two:>10,.0f} events/s = {two / aggregator:.2f}x one "
            f"(on {os.cpu_count()} cores, beside the broker)"
        )
        aggregator_env_last = aggregator_env(f"bench-aggregator-{args.repeat - 1}", port)

        url, log = f"http://127.0.0.1:{port}", state / "freshness.log"
        with open(log, "ab") as out:
            # the last single replica's group and state: it resumes where its drain stopped
            process = subprocess.Popen(
                command, env=aggregator_env_last, cwd=ROOT, stdout=out, stderr=out
            )
            try:
                _wait_ready(url, process, log)
                time.sleep(2)
                before = histogram(httpx.get(url + "/metrics", timeout=10).text, FRESHNESS)
                sent = asyncio.run(_steady(bootstrap, posts, args.rate, args.seconds))
                time.sleep(3)
                after = histogram(httpx.get(url + "/metrics", timeout=10).text, FRESHNESS)
            finally:
                process.terminate()
                process.wait(timeout=60)
        observed = after[float("inf")] - before.get(float("inf"), 0.0)
        p50, p99 = quantile(0.5, before, after), quantile(0.99, before, after)
        print(
            f"3. freshness at {args.rate:,} posts/s for {args.seconds:.0f} s "
            f"({sent:,} records, {observed:,.0f} applied): p50 {p50 * 1000:.0f} ms, "
            f"p99 {p99 * 1000:.0f} ms (target: p99 <= 1 s)"
        )
    result = {
        "posts": args.posts,
        "events": events,
        "faust_baseline_events_per_s": round(baseline),
        "faust_baseline_runs": [round(r) for r in baselines],
        "faust_table_write_events_per_s": round(writes),
        "aggregator_events_per_s": round(aggregator),
        "aggregator_runs": [round(r) for r in aggregators],
        "ratio": round(aggregator / baseline, 3),
        "two_replicas_events_per_s": round(two),
        "two_replicas_scaling": round(two / aggregator, 3),
        "steady_posts_per_s": args.rate,
        "freshness_p50_s": round(p50, 4),
        "freshness_p99_s": round(p99, 4),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
