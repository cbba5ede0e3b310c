"""The soak (``make soak``, not in CI): the whole local pipeline under a steady load for a long
time, each process's resident memory, open file descriptors and consumer lag sampled on a fixed
interval, then judged: after the warm-up, no service's RSS grows more than 10% and the lag stays
bounded.

It starts ``pinpipe up --detach`` (Kafka, the four services and the emulator, supervised) in a
folder of its own, on a lake in an S3 server of its own, with a working set the warm-up
reaches (2,000 posts in the source database, rolling windows of at most 5 minutes); writes
``var/bench/soak.csv`` (one row per process and sample) and ``var/bench/soak.png``; prints a
verdict per service; exits 1 when one fails. ``--minutes 3 --warmup 1`` gives a quick look.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any

from bench.local_stack import ROOT, free_port, local_s3
from bench.metrics_text import metric_sum, scrape
from tests.pipeline_env import pipeline_env

OUT = ROOT / "var" / "bench"
LAG_METRICS = {
    "cleaner": "pinpipe_cleaner_consumer_lag",
    "aggregator": "pinpipe_aggregator_consumer_lag",
    "s3-sink": "pinpipe_s3_sink_consumer_lag",
}
RSS_GROWTH_LIMIT = 0.10
# shown, not judged: the broker is the JVM's, whose heap fills up to its -Xmx before it settles
NOT_JUDGED = {"kafka": "(JVM heap up to -Xmx1g: not judged)"}
SOURCE_POSTS = 2_000


@dataclass(frozen=True)
class Sample:
    seconds: float
    process: str
    pid: int
    rss_bytes: int
    open_fds: int
    lag: float | None  # records, for the consumers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="length of the load")
    parser.add_argument("--warmup", type=float, default=5.0, help="minutes not judged")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--rate", type=float, default=50.0, help="posts per second (both routes)")
    parser.add_argument(
        "--from-csv", type=Path, help="judge and plot the samples of an earlier run instead"
    )
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.from_csv:
        samples = _read_csv(args.from_csv)
        _plot(samples, args.warmup * 60, OUT / "soak.png")
        return 0 if _judge(samples, args.warmup * 60, args.rate, {}) else 1
    samples = []
    with soak_stack(args.rate) as stack:
        started = time.monotonic()
        end = started + args.minutes * 60
        next_at = started
        while next_at < end:
            time.sleep(max(0.0, next_at - time.monotonic()))
            now = time.monotonic() - started
            taken = stack.sample(now)
            samples += taken
            _progress(now, args.minutes * 60, taken)
            next_at += args.interval
        restarts = stack.restarts()
    _write_csv(samples, OUT / "soak.csv")
    _plot(samples, args.warmup * 60, OUT / "soak.png")
    ok = _judge(samples, args.warmup * 60, args.rate, restarts)
    print(f"\nsamples: {OUT / 'soak.csv'}   plot: {OUT / 'soak.png'}")
    return 0 if ok else 1


class SoakStack:
    def __init__(self, folder: Path, env: dict[str, str], ports: dict[str, int]) -> None:
        self.folder = folder
        self.env = env
        self.ports = ports

    def pinpipe(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "cli.main", *args],
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode not in (0, 3):
            raise RuntimeError(f"pinpipe {' '.join(args)}: {result.stdout}{result.stderr}")
        return result.stdout

    def children(self) -> dict[str, int]:
        """Running processes by name (from the supervisor's state file)."""
        state = json.loads((self.folder / "var" / "run" / "stack.json").read_text())
        return {c["name"]: c["identity"]["pid"] for c in state["children"] if c["identity"]}

    def restarts(self) -> dict[str, int]:
        state = json.loads((self.folder / "var" / "run" / "stack.json").read_text())
        return {c["name"]: c["restarts"] for c in state["children"]}

    def sample(self, seconds: float) -> list[Sample]:
        taken = []
        for name, pid in self.children().items():
            try:
                rss = rss_bytes(pid)
                fds = len(os.listdir(f"/proc/{pid}/fd"))
            except OSError:
                continue  # it is being restarted
            lag = self._lag(name)
            taken.append(Sample(round(seconds, 1), name, pid, rss, fds, lag))
        return taken

    def _lag(self, name: str) -> float | None:
        if name not in LAG_METRICS:
            return None
        text = scrape(self.ports[name], timeout=5)
        return metric_sum(text, LAG_METRICS[name]) if text else None


@contextmanager
def soak_stack(
    rate: float, *, emulator: bool = True, source_posts: int = SOURCE_POSTS
) -> Iterator[SoakStack]:
    """The whole pipeline (``pinpipe up --detach``) in a folder of its own, on a lake in an S3
    server of its own; with ``emulator``, posting ``rate`` posts/s on both routes."""
    folder = Path(tempfile.mkdtemp(prefix="pinpipe-soak-"))
    with local_s3(folder) as s3:
        ports = {
            "kafka": free_port(19292, span=1),  # below the ephemeral range: restarts can bind
            "ingest-api": free_port(17600),
            "aggregator": free_port(17700),
            "cleaner": free_port(17800),
            "s3-sink": free_port(17900),
            "emulator": free_port(18000),
        }
        env = {
            **pipeline_env(
                folder,
                f"127.0.0.1:{ports['kafka']}",
                ports,
                "s3://soak/lake",
                s3.endpoint,
                (s3.access_key, s3.secret_key),
            ),
            "PINPIPE_EMULATOR_MODE": "both",
            "PINPIPE_EMULATOR_RATE": str(rate),
            "PINPIPE_EMULATOR_BATCH_SIZE": "5",
            "PINPIPE_LOG_LEVEL": "WARNING",
            # the working set is reached within the warm-up, so that growth after it is a leak:
            # rolling windows kept 5 minutes (not an hour), and 2,000 posts, each picked
            # several times in the first minutes (see the source database below)
            "PINPIPE_AGGREGATOR_WINDOW_RETENTION_SECONDS": "300",
        }
        stack = SoakStack(folder, env, ports)
        import s3fs

        fs = s3fs.S3FileSystem(
            key=s3.access_key,
            secret=s3.secret_key,
            endpoint_url=s3.endpoint,
            config_kwargs={"s3": {"addressing_style": "path"}},
        )
        _create_bucket(fs, "soak")
        stack.pinpipe("emulator", "seed-db", "--rows", str(source_posts))
        load = f"{rate:g} posts/s on both routes" if emulator else "no emulator"
        print(f"starting the pipeline in {folder} ({load})")
        stack.pinpipe("up", "--detach", "--emulator" if emulator else "--no-emulator")
        try:
            yield stack
        finally:
            stack.pinpipe("down")


def _create_bucket(fs: Any, name: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            fs.mkdir(name)
            return
        except FileExistsError:
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _progress(now: float, total: float, taken: list[Sample]) -> None:
    parts = [f"{s.process} {s.rss_bytes / 2**20:.0f}M" for s in taken]
    lags = [f"{s.process} lag {s.lag:.0f}" for s in taken if s.lag is not None]
    print(f"[{now / 60:5.1f}/{total / 60:.0f} min] " + ", ".join(parts + lags), flush=True)


def _write_csv(samples: list[Sample], path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["seconds", "process", "pid", "rss_bytes", "open_fds", "lag"])
        for s in samples:
            writer.writerow([s.seconds, s.process, s.pid, s.rss_bytes, s.open_fds, s.lag])


def _read_csv(path: Path) -> list[Sample]:
    with path.open(newline="") as handle:
        return [
            Sample(
                float(row["seconds"]),
                row["process"],
                int(row["pid"]),
                int(row["rss_bytes"]),
                int(row["open_fds"]),
                float(row["lag"]) if row["lag"] else None,
            )
            for row in csv.DictReader(handle)
        ]


def _series(samples: list[Sample], name: str, after: float = 0.0) -> list[Sample]:
    return [s for s in samples if s.process == name and s.seconds >= after]


def _judge(samples: list[Sample], warmup: float, rate: float, restarts: dict[str, int]) -> bool:
    """After the warm-up, for each of pinpipe's processes: RSS grows at most RSS_GROWTH_LIMIT
    (the median of the last tenth of the samples against the first tenth's), and lag is
    bounded: its peak in the last third is at most 1.5 times its peak in the first third (plus
    ten seconds of load), not climbing. No process may have been restarted."""
    ok = True
    slack = 10 * rate * 6  # ten seconds of raw records (3 types, 2 routes)
    print(
        f"\n{'process':<12} {'RSS after warm-up':>18} {'RSS at end':>11} {'growth':>7} "
        f"{'fds':>9} {'lag peak 1st/3rd third':>23} restarts verdict"
    )
    for name in sorted({s.process for s in samples}):
        series = _series(samples, name, warmup)
        if len(series) < 6:
            print(f"{name:<12} too few samples after the warm-up")
            ok = False
            continue
        tenth, third = max(1, len(series) // 10), len(series) // 3
        first = median(s.rss_bytes for s in series[:tenth])
        last = median(s.rss_bytes for s in series[-tenth:])
        growth = last / first - 1
        fds = f"{series[0].open_fds}→{series[-1].open_fds}"
        early = max((s.lag or 0.0) for s in series[:third])
        late = max((s.lag or 0.0) for s in series[-third:])
        bounded = late <= 1.5 * early + slack
        good = growth <= RSS_GROWTH_LIMIT and bounded and not restarts.get(name)
        if name in NOT_JUDGED:
            verdict = NOT_JUDGED[name]
        else:
            ok &= good
            verdict = "ok" if good else "FAIL"
        lag = f"{early:.0f}/{late:.0f}" if name in LAG_METRICS else "-"
        print(
            f"{name:<12} {first / 2**20:>16.0f}M {last / 2**20:>10.0f}M {growth:>+7.1%} "
            f"{fds:>9} {lag:>23} {restarts.get(name, 0):>8} {verdict}"
        )
    return ok


def _plot(samples: list[Sample], warmup: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted({s.process for s in samples})
    figure, (rss, fds, lag) = plt.subplots(3, 1, figsize=(11, 11), sharex=True)
    for name in names:
        series = _series(samples, name)
        minutes = [s.seconds / 60 for s in series]
        rss.plot(minutes, [s.rss_bytes / 2**20 for s in series], label=name)
        fds.plot(minutes, [s.open_fds for s in series], label=name)
        if name in LAG_METRICS:
            lag.plot(minutes, [s.lag or 0 for s in series], label=name)
    for axis, title in (
        (rss, "RSS (MiB)"),
        (fds, "open file descriptors"),
        (lag, "consumer lag (records)"),
    ):
        axis.axvline(warmup / 60, color="grey", linestyle="--", linewidth=1)
        axis.set_ylabel(title)
        axis.grid(alpha=0.3)
        axis.legend(loc="upper left", fontsize="small")
    lag.set_xlabel("minutes (dashed: end of the warm-up)")
    figure.suptitle("pinpipe soak: the whole local pipeline under a steady load")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


if __name__ == "__main__":
    sys.exit(main())
