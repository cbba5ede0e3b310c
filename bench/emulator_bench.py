"""Posts/s one emulator process sustains against the ingest API, in one run.

    make bench              (or: .venv/bin/python -m bench.emulator_bench --help)

Batch mode (REST proxy v2 bodies) and stream mode (Kinesis-style records), each one post per
request and batched; a post is three records (pin, geo, user) read at one random offset of a
SQLite source holding the real sample (../shared/pinterest-data) when present.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.local_stack import ROOT, local_stack
from services.emulator import poster
from services.emulator.config import Mode
from services.emulator.seed import generated, read_jsonl_dir, seed
from services.emulator.source_db import connect

SAMPLE = ROOT.parent / "shared" / "pinterest-data" / "raw_union"
# mode, posts per request, requests in flight, posts
SCENARIOS: tuple[tuple[Mode, int, int, int], ...] = (
    ("batch", 1, 1, 3_000),
    ("batch", 100, 4, 40_000),
    ("stream", 1, 1, 3_000),
    ("stream", 100, 4, 40_000),
)


async def _measure(
    url: str, engine: Any, mode: Mode, batch_size: int, concurrency: int, count: int
) -> float:
    posts = poster.random_posts(engine, random.Random(7))
    started = time.perf_counter()
    options = poster.RunOptions(
        url, "ebench", mode=mode, count=count, batch_size=batch_size, concurrency=concurrency
    )
    tally = await poster.run(options, posts)
    elapsed = time.perf_counter() - started
    if tally.posted != count:
        raise RuntimeError(f"{mode}/{batch_size}: posted {tally.posted} of {count}")
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench" / "emulator.json")
    args = parser.parse_args()
    engine = connect(f"sqlite:///{Path(tempfile.mkdtemp(prefix='pinpipe-bench-')) / 'source.db'}")
    source = "the real sample" if SAMPLE.is_dir() else "11,000 generated posts"
    seed(engine, read_jsonl_dir(SAMPLE) if SAMPLE.is_dir() else generated(11_000, 100))
    results: dict[str, Any] = {}
    with local_stack(prefix="ebench", partitions=4) as stack:
        print(f"source: SQLite with {source}; one emulator process, one ingest API worker")
        for mode, batch_size, concurrency, count in SCENARIOS:
            rate = asyncio.run(
                _measure(stack.api_url, engine, mode, batch_size, concurrency, count)
            )
            name = f"{mode}_{batch_size}x{concurrency}"
            results[name] = {"posts_per_s": round(rate), "records_per_s": round(rate * 3)}
            print(
                f"{mode:>6} mode, {batch_size:>3} posts/request, {concurrency} in flight: "
                f"{rate:>8,.0f} posts/s ({rate * 3:>8,.0f} records/s)"
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
