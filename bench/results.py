"""One results table of every benchmark: ``var/bench/results.md`` from the JSON files the
benchmarks wrote under ``var/bench/`` (``make bench`` runs this last).

    .venv/bin/python -m bench.results            write var/bench/results.md
    .venv/bin/python -m bench.results --readme   and put the table in README.md's Benchmarks

Each row: the figure, its value, the baseline measured in the same run (when it has one) and
the ratio, the target, the day its JSON was written and the command that measures it. The
machine heads the table: figures are comparable on one machine, ratios across machines.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.local_stack import ROOT

BENCH_DIR = ROOT / "var" / "bench"
README = ROOT / "README.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"

Read = Callable[[dict[str, Any]], float | None]


def key(*path: str) -> Read:
    """The number at ``path`` in a benchmark's JSON (a list: its best, the largest)."""

    def read(data: dict[str, Any]) -> float | None:
        value: Any = data
        for part in path:
            if not isinstance(value, dict) or part not in value:
                return None
            value = value[part]
        if isinstance(value, list):
            return max(value) if value else None
        return float(value) if isinstance(value, int | float) else None

    return read


@dataclass(frozen=True)
class Figure:
    bench: str  # bench/<bench>.py, writing var/bench/<json>.json
    json: str
    what: str
    value: Read
    unit: str
    baseline_what: str = ""
    baseline: Read | None = None
    target: str = ""


FIGURES: tuple[Figure, ...] = (
    Figure(
        "ingest_bench",
        "ingest",
        "ingest API, 500 records a request",
        key("batched_500", "records_per_s"),
        "records/s",
        "a raw aiokafka producer",
        key("baseline_records_per_s"),
        "≥ 0.5x",
    ),
    Figure(
        "ingest_bench",
        "ingest",
        "ingest API, one record a request (most)",
        key("single_max", "requests_per_s"),
        "requests/s",
    ),
    Figure(
        "ingest_bench",
        "ingest",
        "ingest API p99 at 1,000 requests/s",
        key("steady_1000", "p99_ms"),
        "ms",
    ),
    Figure(
        "emulator_bench",
        "emulator",
        "emulator, batch mode, 100 posts a request, 4 in flight",
        key("batch_100x4", "posts_per_s"),
        "posts/s",
    ),
    Figure(
        "cleaner_bench",
        "cleaner",
        "cleaner (exactly once)",
        key("cleaner_records_per_s"),
        "records/s",
        "a minimal consume → clean → produce loop",
        key("baseline_records_per_s"),
        "≥ 0.5x",
    ),
    Figure(
        "sink_bench",
        "sink",
        "S3 sink (Delta commits)",
        key("sink_records_per_s"),
        "records/s",
        "a minimal consume → Arrow → Parquet → commit loop",
        key("baseline_records_per_s"),
        "≥ 0.8x",
    ),
    Figure(
        "sink_bench",
        "sink",
        "S3 sink objects per 100,000 records",
        key("objects_per_100k"),
        "objects",
    ),
    Figure(
        "aggregator_bench",
        "aggregator",
        "aggregator",
        key("aggregator_events_per_s"),
        "events/s",
        "a Faust worker doing nothing per event",
        key("faust_baseline_events_per_s"),
        "≥ 0.75x",
    ),
    Figure(
        "aggregator_bench",
        "aggregator",
        "aggregator, two replicas (one group, two processes)",
        key("two_replicas_events_per_s"),
        "events/s",
        "one replica",
        key("aggregator_events_per_s"),
    ),
    Figure(
        "aggregator_bench",
        "aggregator",
        "aggregator freshness p99 at 1,000 posts/s",
        key("freshness_p99_s"),
        "s",
        target="≤ 1 s",
    ),
    Figure(
        "pipeline_bench",
        "pipeline",
        "whole pipeline, highest rate holding freshness p99 ≤ 1 s, lake delay p99 ≤ 65 s",
        key("highest_held_posts_per_s"),
        "posts/s",
        "the slowest stage alone, by its own benchmark",
        key("slowest_stage_posts_per_s"),
        "≥ 0.5x",
    ),
    Figure(
        "batch_bench",
        "batch",
        "the nine on DuckDB, 10 M posts, every clean record",
        key("duckdb_s"),
        "s",
        "Spark SQL on the same lake",
        key("spark_s"),
    ),
    Figure(
        "lake_bench",
        "lake",
        "the nine on DuckDB over posts, history 1x",
        key("nine_1x_s"),
        "s",
        "the nine alone over the rows in memory",
        key("nine_in_memory_s"),
        "< 3 s",
    ),
    Figure(
        "lake_bench",
        "lake",
        "the nine on DuckDB over posts, history 3x",
        key("nine_3x_s"),
        "s",
        "the same at history 1x",
        key("nine_1x_s"),
        "< 3 s, no growth",
    ),
    Figure(
        "lake_bench",
        "lake",
        "the nine on DuckDB over posts a refresh behind (3x, 1% of the posts newer)",
        key("nine_3x_stale_s"),
        "s",
        "the same with posts up to date",
        key("nine_3x_s"),
        "< 3 s",
    ),
    Figure(
        "lake_bench",
        "lake",
        "the nine on Spark SQL over posts, history 3x, 1% newer",
        key("spark_3x_s"),
        "s",
    ),
    Figure(
        "lake_bench",
        "lake",
        "MERGE into posts",
        key("merge_records_per_s"),
        "records/s",
        target="≥ 50,000",
    ),
    Figure(
        "lake_bench",
        "lake",
        "compaction of 1,000 one-record files: files left",
        key("compact_files_after"),
        "files",
        target="≤ 10",
    ),
    Figure(
        "first_answer",
        "first_answer",
        "git clone → first live answer, cold caches",
        key("cold_s"),
        "s",
        target="< 180 s",
    ),
    Figure(
        "first_answer",
        "first_answer",
        "`make up` again → first live answer",
        key("warm_s"),
        "s",
        target="< 20 s",
    ),
)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        memory = int(Path("/proc/meminfo").read_text().split()[1]) // (1 << 20)
    except OSError:
        memory = 0
    return f"{cpu}, {os.cpu_count()} cores, {memory} GiB, {platform.system()} {platform.release()}"


def _commit() -> str:
    out = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return out.stdout.strip() or "unknown"


def _number(value: float, unit: str) -> str:
    if unit in ("s", "ms") and value < 100:
        return f"{value:.2f} {unit}"
    return f"{value:,.0f} {unit}"


def table(bench_dir: Path = BENCH_DIR) -> str:
    """The results as a Markdown table, read from ``bench_dir``."""
    rows = [
        "| figure | value | baseline (same run) | ratio | target | measured | command |",
        "|---|---|---|---|---|---|---|",
    ]
    for figure in FIGURES:
        path = bench_dir / f"{figure.json}.json"
        command = f"`python -m bench.{figure.bench}`"
        data = json.loads(path.read_text()) if path.is_file() else None
        value = figure.value(data) if data is not None else None
        if value is None:
            rows.append(f"| {figure.what} | not run | | | {figure.target} | | {command} |")
            continue
        baseline = figure.baseline(data) if figure.baseline and data is not None else None
        base = f"{_number(baseline, figure.unit)} ({figure.baseline_what})" if baseline else ""
        ratio = f"{value / baseline:.2f}x" if baseline else ""
        day = datetime.fromtimestamp(path.stat().st_mtime, UTC).strftime("%Y-%m-%d")
        rows.append(
            f"| {figure.what} | {_number(value, figure.unit)} | {base} | {ratio} | "
            f"{figure.target} | {day} | {command} |"
        )
    return "\n".join(rows) + "\n"


def document(bench_dir: Path = BENCH_DIR) -> str:
    return (
        f"Machine: {machine()}. Commit {_commit()}; written "
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M')} UTC by `python -m bench.results`.\n\n"
        + table(bench_dir)
    )


def with_results(readme: str, results: str) -> str:
    """``readme`` with ``results`` between its results markers."""
    start, end = readme.index(BEGIN) + len(BEGIN), readme.index(END)
    return readme[:start] + "\n" + results + readme[end:]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--readme", action="store_true", help="also update README.md's table")
    args = parser.parse_args()
    text = document()
    out = BENCH_DIR / "results.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("# pinpipe benchmark results\n\n" + text)
    print(text, end="")
    print(f"written to {out}")
    if args.readme:
        README.write_text(with_results(README.read_text(), text))
        print(f"and to {README}'s Benchmarks section")


if __name__ == "__main__":
    main()
