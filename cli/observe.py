"""Prometheus for the local stack (``pinpipe up --observe``, ``make up OBSERVE=1``): Debian's
``prometheus`` binary scraping every service's ``/metrics`` on 127.0.0.1, with its config and
data under ``var/prometheus``. The dashboards' PromQL runs against it unchanged (the e2e test
``tests/e2e/test_dashboards.py`` does exactly that)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_PORT = 9090
SCRAPE_INTERVAL = "2s"  # a laptop's handful of targets: fine-grained panels cost nothing


def scrape_config(targets: dict[str, str], interval: str = SCRAPE_INTERVAL) -> dict[str, object]:
    """A prometheus.yml (as a dict) with one job per service: ``{job: base_url}``."""
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": [
            {
                "job_name": job,
                "metrics_path": "/metrics",
                "static_configs": [{"targets": [urlsplit(url).netloc]}],
            }
            for job, url in targets.items()
        ],
    }


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        raise RuntimeError(
            "prometheus is not installed: bash infra/require.sh prometheus "
            "(Debian's package), or make up OBSERVE=1, which installs it"
        )
    return found


def prometheus_command(var_dir: Path, port: int, targets: dict[str, str]) -> list[str]:
    """Write the config under ``var_dir/prometheus`` and return the command that runs it."""
    home = var_dir / "prometheus"
    home.mkdir(parents=True, exist_ok=True)
    config = home / "prometheus.yml"
    config.write_text(json.dumps(scrape_config(targets), indent=2) + "\n")  # JSON is YAML
    return [
        prometheus_binary(),
        f"--config.file={config}",
        f"--storage.tsdb.path={home / 'data'}",
        "--storage.tsdb.retention.time=1d",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
