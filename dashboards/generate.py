"""The dashboards' JSON, as Grafana's provisioning reads it, and the check that the committed
files are what the code generates."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from dashboards import business, pipeline_health

REPO_ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = REPO_ROOT / "k8s" / "components" / "grafana" / "dashboards"
DASHBOARDS: dict[str, Callable[[], Dashboard]] = {
    "pipeline-health.json": pipeline_health.build,
    "business.json": business.build,
}


def render(build: Callable[[], Dashboard]) -> str:
    """One dashboard's JSON text: sorted keys, stable across runs; panels numbered 1, 2, …
    (the SDK leaves every id 0) and null fields left out (Grafana fills in its defaults)."""
    dashboard = json.loads(JSONEncoder().encode(build().build()))
    for number, panel in enumerate(panels(dashboard), start=1):
        panel["id"] = number
    return json.dumps(_without_nulls(dashboard), sort_keys=True, indent=2) + "\n"


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def write(out: Path = OUT_DIR) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, build in DASHBOARDS.items():
        path = out / name
        path.write_text(render(build))
        paths.append(path)
    return paths


def differences(out: Path = OUT_DIR) -> list[str]:
    """The files in ``out`` that are missing or differ from what the code generates."""
    return [
        name
        for name, build in DASHBOARDS.items()
        if not (out / name).exists() or (out / name).read_text() != render(build)
    ]


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel of a dashboard's JSON, rows' nested panels included."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def expressions(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(panel title, PromQL) of every query of every panel."""
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            if "expr" in target:
                yield panel["title"], target["expr"]


METRIC = re.compile(r"\b(pinpipe_[a-z0-9_]+)")


def metric_names(expr: str) -> list[str]:
    """The pinpipe metrics a PromQL expression names (histograms as ``…_bucket``)."""
    return METRIC.findall(expr)


def load(out: Path = OUT_DIR) -> dict[str, dict[str, Any]]:
    return {name: json.loads((out / name).read_text()) for name in DASHBOARDS}
