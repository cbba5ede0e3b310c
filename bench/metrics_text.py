"""Reading the services' Prometheus text (``/metrics``) in the benchmarks: a metric's sum over
its labels, a histogram's buckets, and the quantile of what a histogram saw between two
snapshots."""

from __future__ import annotations

import httpx


def scrape(port: int, timeout: float = 15.0) -> str:
    """``/metrics`` of the service on 127.0.0.1:``port``; empty when it does not answer (a
    busy service's scrape may time out: the figure is then missing, not zero)."""
    try:
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=timeout).text
    except httpx.HTTPError:
        return ""


def metric_sum(text: str, name: str, label: str = "") -> float:
    """The sum of ``name``'s labelled series (those whose labels include ``label``)."""
    return sum(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith(name + "{") and label in line
    )


def histogram(text: str, name: str) -> dict[float, float]:
    """Cumulative bucket counts (le → count) of histogram ``name``, summed over its labels."""
    buckets: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith(name + "_bucket{"):
            le = line.split('le="')[1].split('"')[0]
            bound = float("inf") if le == "+Inf" else float(le)
            buckets[bound] = buckets.get(bound, 0.0) + float(line.split()[-1])
    return buckets


def quantile(q: float, before: dict[float, float], after: dict[float, float]) -> float:
    """histogram_quantile over the observations between two snapshots."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1]
    if not total:
        return float("nan")
    wanted, lower, below = q * total, 0.0, 0.0
    for bound, count in zip(bounds, counts, strict=True):
        if count >= wanted:
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * (wanted - below) / max(count - below, 1e-9)
        lower, below = bound, count
    return lower
