"""How many posts/s the whole pipeline sustains on this one machine, and which stage gives out
first.

    make bench              (or: .venv/bin/python -m bench.pipeline_bench --help)

The whole local pipeline (``pinpipe up --detach --no-emulator``: Kafka, ingest API, cleaner,
S3 sink on a lake in a SeaweedFS server of its own, aggregator), loaded by emulator processes
(``pinpipe emulator run``, batch mode, --batch posts a request, one process per 1,000 posts/s)
at stepped rates (--rates). Each step runs --warmup seconds unmeasured, then --seconds measured:

- offered and achieved posts/s (records the ingest API took, / 3);
- freshness, ingest → live answer: p50/p99 of ``pinpipe_aggregator_freshness_seconds`` over
  the step (interpolated within buckets, as Prometheus' histogram_quantile);
- lake delay, ingest → visible to ``pinpipe query``: for every record of every file committed to
  the clean tables during the step, its commit's time (the Delta log) minus its ``_ingested_at``
  (exact, per record; the sink rolls a file every 60 s of record time, so ~60 s is by design);
- consumer lag per group at the step's end, CPU seconds and peak RSS per process (/proc).

A step holds when achieved ≥ 95% of offered, freshness p99 ≤ 1 s and lake delay p99 ≤ 65 s.
The result: the highest rate that held, and the stage that saturated first (at the first step
that did not hold: the consumer furthest behind, in seconds of the offered rate, past 1 s (the
sink: 65 s, its files roll every 60 s); else the busiest process, with the machine's share).
The stages' own benchmarks (var/bench/{ingest,cleaner,sink,aggregator}.json; `make bench` runs
them first, in the same run) give each stage's standalone posts/s; the pipeline's rate is
stated as a ratio of the slowest (goal ≥ 0.5x). Writes var/bench/pipeline.json and .png.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from pydantic import SecretStr

from bench.aggregator_bench import FRESHNESS
from bench.local_stack import ROOT, free_port
from bench.metrics_text import histogram, metric_sum, quantile, scrape
from bench.results import Read, key
from bench.soak import LAG_METRICS, SoakStack, rss_bytes, soak_stack
from shared.lake import Lake, open_lake
from shared.topics import RECORD_TYPES

OUT = ROOT / "var" / "bench"
CORES = os.cpu_count() or 1
POSTS_PER_EMULATOR = 1_000  # posts/s one emulator process is asked for at most
HOLD_ACHIEVED = 0.95
HOLD_FRESHNESS_P99_S = 1.0
HOLD_LAKE_DELAY_P99_S = 65.0
INGEST_RECORDS = "pinpipe_ingest_api_records_total"
CLEANER_LATENCY = "pinpipe_cleaner_record_latency_seconds"  # raw append → clean commit
# how far behind (seconds of the offered rate) a consumer may be before it counts as saturated,
# and its records per post: the sink holds records up to a file's 60 s roll by design
BEHIND_ALLOWED_S = {"cleaner": 1.0, "aggregator": 1.0, "s3-sink": HOLD_LAKE_DELAY_P99_S}
RECORDS_PER_POST = {"cleaner": 3, "aggregator": 3, "s3-sink": 6}
# a stage's standalone posts/s from its own benchmark: (json, its reading, records per post)
STAGES: dict[str, tuple[str, Read, int]] = {
    "ingest-api": ("ingest", key("batched_500", "records_per_s"), 3),
    "cleaner": ("cleaner", key("cleaner_records_per_s"), 3),
    "s3-sink": ("sink", key("sink_records_per_s"), 6),  # raw and clean: 6 records a post
    "aggregator": ("aggregator", key("aggregator_events_per_s"), 3),
}


@dataclass
class Step:
    offered: float
    achieved: float = 0.0
    freshness_p50_s: float = math.nan
    freshness_p99_s: float = math.nan
    lake_delay_p50_s: float = math.nan
    lake_delay_p99_s: float = math.nan
    lake_records: int = 0
    # of the freshness, what the cleaner took (raw append → clean commit, per batch's first)
    cleaner_p50_s: float = math.nan
    cleaner_p99_s: float = math.nan
    lag: dict[str, float] = field(default_factory=dict)
    behind_s: dict[str, float] = field(default_factory=dict)  # lag / the offered rate
    cpu_s: dict[str, float] = field(default_factory=dict)
    peak_rss_mib: dict[str, float] = field(default_factory=dict)

    @property
    def held(self) -> bool:
        return (
            self.achieved >= HOLD_ACHIEVED * self.offered
            and self.freshness_p99_s <= HOLD_FRESHNESS_P99_S
            and self.lake_delay_p99_s <= HOLD_LAKE_DELAY_P99_S
        )


class LakeWatch:
    """The clean tables' Delta logs, read as they grow: per record committed since the last
    look, its commit time minus its ingest time."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self.next_version = dict.fromkeys(RECORD_TYPES, 0)

    def delays(self) -> list[np.ndarray]:
        found = []
        for record_type in RECORD_TYPES:
            log = self.lake.path(f"clean/{record_type}/_delta_log")
            while True:
                entry = f"{log}/{self.next_version[record_type]:020d}.json"
                try:
                    text = self.lake.fs.cat_file(entry).decode()
                except FileNotFoundError:
                    break
                self.next_version[record_type] += 1
                actions = [json.loads(line) for line in text.splitlines() if line]
                info: dict[str, Any] = next(
                    (a["commitInfo"] for a in actions if "commitInfo" in a), {}
                )
                committed_ms = info.get("timestamp")
                for action in actions:
                    if "add" not in action or committed_ms is None:
                        continue
                    path = self.lake.path(f"clean/{record_type}/{action['add']['path']}")
                    with self.lake.fs.open(path, "rb") as handle:
                        ingested = pq.read_table(handle, columns=["_ingested_at"]).column(0)
                    micros = ingested.cast("int64").to_numpy()
                    found.append((committed_ms * 1000 - micros) / 1e6)
        return found


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Emulators:
    """Emulator processes posting ``rate`` posts/s together."""

    def __init__(self, stack: SoakStack, rate: float, batch: int) -> None:
        count = max(1, math.ceil(rate / POSTS_PER_EMULATOR))
        self.processes = []
        for n in range(count):
            env = {
                **stack.env,
                "PINPIPE_EMULATOR_MODE": "batch",
                "PINPIPE_EMULATOR_RATE": str(rate / count),
                "PINPIPE_EMULATOR_BATCH_SIZE": str(batch),
                "PINPIPE_EMULATOR_PORT": str(free_port(18100 + 10 * n)),
            }
            log = stack.folder / f"emulator-{rate:g}-{n}.log"
            with open(log, "ab") as out:  # the child keeps its own descriptor
                command = [sys.executable, "-m", "cli.main", "emulator", "run"]
                self.processes.append(
                    subprocess.Popen(command, cwd=stack.folder, env=env, stdout=out, stderr=out)
                )

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _lags(stack: SoakStack) -> dict[str, float]:
    return {name: metric_sum(scrape(stack.ports[name]), lag) for name, lag in LAG_METRICS.items()}


def run_step(
    stack: SoakStack, watch: LakeWatch, rate: float, batch: int, warmup: float, seconds: float
) -> Step:
    step = Step(rate)
    emulators = Emulators(stack, rate, batch)
    try:
        time.sleep(warmup)  # a benchmark's warm-up: nothing to wait for but time
        watch.delays()  # what was committed before the step is not the step's
        processes = stack.children()
        processes["seaweedfs"] = int((stack.folder / "s3" / "weed.pid").read_text())
        processes.update({f"emulator-{n}": pid for n, pid in enumerate(emulators.pids())})
        cpu_before = {name: _cpu_seconds(pid) for name, pid in processes.items()}
        ingest_before = metric_sum(scrape(stack.ports["ingest-api"]), INGEST_RECORDS, 'status="ok"')
        fresh_before = histogram(scrape(stack.ports["aggregator"]), FRESHNESS)
        cleaner_before = histogram(scrape(stack.ports["cleaner"]), CLEANER_LATENCY)
        started = time.monotonic()
        delays: list[np.ndarray] = []
        peak = dict.fromkeys(processes, 0.0)
        while (elapsed := time.monotonic() - started) < seconds:
            for name, pid in processes.items():
                try:
                    peak[name] = max(peak[name], rss_bytes(pid) / 2**20)
                except OSError:
                    pass  # restarted: its successor is not this step's
            delays += watch.delays()
            print(f"\r   {rate:>6g} posts/s: {elapsed:3.0f}/{seconds:.0f} s", end="", flush=True)
            time.sleep(2.0)
        elapsed = time.monotonic() - started
        ingest_after = metric_sum(scrape(stack.ports["ingest-api"]), INGEST_RECORDS, 'status="ok"')
        fresh_after = histogram(scrape(stack.ports["aggregator"]), FRESHNESS)
        cleaner_after = histogram(scrape(stack.ports["cleaner"]), CLEANER_LATENCY)
        step.lag = _lags(stack)
        step.behind_s = {
            name: round(lag / (rate * RECORDS_PER_POST[name]), 2) for name, lag in step.lag.items()
        }
        for name, pid in processes.items():
            try:
                step.cpu_s[name] = round(_cpu_seconds(pid) - cpu_before[name], 1)
            except OSError:
                continue
        step.peak_rss_mib = {name: round(value) for name, value in peak.items()}
    finally:
        emulators.stop()
    delays += watch.delays()  # files the step's records went into, committed up to now
    step.achieved = (ingest_after - ingest_before) / 3 / elapsed
    if fresh_after:
        step.freshness_p50_s = quantile(0.5, fresh_before, fresh_after)
        step.freshness_p99_s = quantile(0.99, fresh_before, fresh_after)
    if cleaner_after:
        step.cleaner_p50_s = quantile(0.5, cleaner_before, cleaner_after)
        step.cleaner_p99_s = quantile(0.99, cleaner_before, cleaner_after)
    if delays:
        every = np.concatenate(delays)
        step.lake_records = int(every.size)
        step.lake_delay_p50_s = float(np.quantile(every, 0.5))
        step.lake_delay_p99_s = float(np.quantile(every, 0.99))
    print(
        f"\r   {rate:>6g} posts/s offered: {step.achieved:7.0f} achieved, freshness p50/p99 "
        f"{step.freshness_p50_s:.2f}/{step.freshness_p99_s:.2f} s (cleaner p50/p99 "
        f"{step.cleaner_p50_s:.2f}/{step.cleaner_p99_s:.2f} s), lake delay p50/p99 "
        f"{step.lake_delay_p50_s:.0f}/{step.lake_delay_p99_s:.0f} s, behind "
        + ", ".join(f"{n} {v:.1f} s" for n, v in step.behind_s.items())
        + f", CPU {sum(step.cpu_s.values()) / seconds / CORES:.0%} of {CORES} cores"
        + f" → {'held' if step.held else 'did not hold'}"
    )
    return step


def saturated_stage(step: Step, seconds: float) -> str:
    """The consumer furthest behind past its allowance (BEHIND_ALLOWED_S), else the process
    that used most CPU, with the machine's share in use."""
    over = {n: b / BEHIND_ALLOWED_S[n] for n, b in step.behind_s.items() if b > BEHIND_ALLOWED_S[n]}
    if over:
        name = max(over, key=lambda n: over[n])
        return f"{name} ({step.behind_s[name]:.1f} s behind)"
    busiest = max(step.cpu_s, key=lambda n: step.cpu_s[n])
    return (
        f"no consumer behind; the machine at {sum(step.cpu_s.values()) / seconds / CORES:.0%} of "
        f"its {CORES} cores, the busiest {busiest} ({step.cpu_s[busiest] / seconds:.0%} of a core)"
    )


def standalone_rates() -> dict[str, dict[str, Any]]:
    """Each stage's posts/s from its own benchmark's JSON, with the day it was written."""
    found = {}
    for stage, (name, read, per_post) in STAGES.items():
        file = OUT / f"{name}.json"
        value = read(json.loads(file.read_text())) if file.is_file() else None
        if value is not None:
            written = datetime.fromtimestamp(file.stat().st_mtime).isoformat(timespec="minutes")
            found[stage] = {"posts_per_s": round(value / per_post), "written": written}
    return found


def _plot(steps: list[Step], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    offered = [s.offered for s in steps]
    figure, rate_axis = plt.subplots(figsize=(8, 4.5))
    rate_axis.plot(offered, [s.achieved for s in steps], "o-", label="achieved posts/s")
    rate_axis.plot(offered, offered, ":", color="grey", label="offered")
    rate_axis.set_xlabel("offered posts/s")
    rate_axis.set_ylabel("posts/s")
    fresh_axis = rate_axis.twinx()
    fresh_axis.plot(
        offered, [s.freshness_p99_s for s in steps], "s--", color="tab:red",
        label="freshness p99 (s)",
    )  # fmt: skip
    fresh_axis.axhline(HOLD_FRESHNESS_P99_S, color="tab:red", linewidth=0.5)
    fresh_axis.set_ylabel("freshness p99, ingest → live answer (s)")
    lines = rate_axis.get_legend_handles_labels()
    more = fresh_axis.get_legend_handles_labels()
    rate_axis.legend(lines[0] + more[0], lines[1] + more[1], loc="upper left")
    rate_axis.set_title("pinpipe on one machine: achieved rate and freshness")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rates", default="250,500,750,1000,1250,1500,2000,3000",
        help="offered posts/s of the steps, ascending (250,500,750,1000,1250,1500,2000,3000); it "
        "stops after the first two steps that do not hold",
    )  # fmt: skip
    parser.add_argument("--seconds", type=float, default=60, help="measured per step (60)")
    parser.add_argument("--warmup", type=float, default=15, help="unmeasured per step (15)")
    parser.add_argument("--batch", type=int, default=50, help="posts a request (50)")
    parser.add_argument("--out", type=Path, default=OUT / "pipeline.json")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    steps: list[Step] = []
    with soak_stack(0, emulator=False, source_posts=11_000) as stack:
        lake = open_lake(
            stack.env["PINPIPE_LAKE_URL"],
            s3_endpoint_url=stack.env["PINPIPE_S3_ENDPOINT_URL"],
            s3_access_key_id=SecretStr(stack.env["PINPIPE_S3_ACCESS_KEY_ID"]),
            s3_secret_access_key=SecretStr(stack.env["PINPIPE_S3_SECRET_ACCESS_KEY"]),
        )
        watch = LakeWatch(lake)
        failed = 0
        for rate in rates:
            steps.append(run_step(stack, watch, rate, args.batch, args.warmup, args.seconds))
            failed += not steps[-1].held
            if failed == 2:
                break
    held = [s.offered for s in steps if s.held]
    best = max(held) if held else 0.0
    first_failed = next((s for s in steps if not s.held), None)
    stage = saturated_stage(first_failed, args.seconds) if first_failed else "none (all held)"
    standalone = standalone_rates()
    slowest = min(standalone, key=lambda n: standalone[n]["posts_per_s"]) if standalone else None
    print(
        f"highest rate that held for {args.seconds:.0f} s: {best:g} posts/s; "
        f"saturated first: {stage}"
    )
    result: dict[str, Any] = {
        "rates": rates,
        "seconds": args.seconds,
        "steps": [{**asdict(s), "held": s.held} for s in steps],
        "highest_held_posts_per_s": best,
        "saturated_first": stage,
        "standalone_posts_per_s": standalone,
    }
    if slowest is not None:
        rate = standalone[slowest]["posts_per_s"]
        result.update(
            slowest_stage=slowest,
            slowest_stage_posts_per_s=rate,
            ratio_to_slowest_stage=round(best / rate, 3),
        )
        print(
            f"slowest stage alone: {slowest} {rate:,} posts/s (its own benchmark, "
            f"{standalone[slowest]['written']}) → the pipeline sustains {best / rate:.2f}x of it "
            "(goal ≥ 0.5x)"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str))
    _plot(steps, args.out.with_suffix(".png"))
    print(f"written to {args.out} and {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
