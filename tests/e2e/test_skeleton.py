"""The walking skeleton, real in every hop.

`pinpipe up --detach` (on the session's broker) starts the ingest API, cleaner, aggregator and
sink on a lake in the real S3 server; `pinpipe emulator` seeds a SQLite source and posts rows
through the REST API. The per-country counts served live by the aggregator and the counts
DuckDB reads from the Parquet lake must both equal what the emulator sent; after some posts are
re-posted with changed values, every live answer equals the batch query over the lake.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from batch.config import BatchSettings
from batch.query import run_question, run_questions
from batch.questions import QUESTIONS
from tests.conftest import wait_until
from tests.servers import REPO_ROOT, S3Server, free_port

pytestmark = pytest.mark.e2e
POSTS = 400


@pytest.fixture
def pipeline(
    tmp_path: Path, kafka_bootstrap: str, s3_server: S3Server, s3_bucket: str, unique: str
) -> Iterator[dict[str, str]]:
    prefix = f"e2e{unique}"
    ports = {
        name: free_port(start=start)
        for name, start in (
            ("ingest", 23000),
            ("aggregator", 23100),
            ("cleaner", 23200),
            ("sink", 23300),
            ("emulator", 23400),
        )
    }
    env = {
        **os.environ,
        "PINPIPE_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "PINPIPE_TOPIC_PREFIX": prefix,
        "PINPIPE_LAKE_URL": f"s3://{s3_bucket}/lake",
        "PINPIPE_S3_ENDPOINT_URL": s3_server.endpoint,
        "PINPIPE_S3_ACCESS_KEY_ID": s3_server.access_key,
        "PINPIPE_S3_SECRET_ACCESS_KEY": s3_server.secret_key,
        "PINPIPE_SOURCE_DB_URL": f"sqlite:///{tmp_path / 'source.db'}",
        "PINPIPE_INGEST_PORT": str(ports["ingest"]),
        "PINPIPE_EMULATOR_API_URL": f"http://127.0.0.1:{ports['ingest']}",
        "PINPIPE_AGGREGATOR_WEB_PORT": str(ports["aggregator"]),
        "PINPIPE_CLEANER_WEB_PORT": str(ports["cleaner"]),
        "PINPIPE_SINK_PORT": str(ports["sink"]),
        "PINPIPE_EMULATOR_METRICS_PORT": str(ports["emulator"]),
        "PINPIPE_CLEANER_APP_ID": f"cleaner-{unique}",
        "PINPIPE_AGGREGATOR_APP_ID": f"aggregator-{unique}",
        "PINPIPE_SINK_GROUP_ID": f"sink-{unique}",
        "PINPIPE_SINK_MAX_OPEN_SECONDS": "2",
        # Only this test's raw topics: the broker is shared with other tests.
        "PINPIPE_CLEANER_RAW_TOPIC_PATTERN": rf"^{prefix}\.(pin|geo|user)$",
        "PINPIPE_SINK_RAW_TOPIC_PATTERN": rf"^{prefix}\.(pin|geo|user)$",
    }

    def pinpipe(*args: str, timeout: float = 180) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "cli.main", *args],
            cwd=tmp_path,
            env={**env, "PYTHONPATH": str(REPO_ROOT)},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert result.returncode == 0, (
            f"pinpipe {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        )
        return result.stdout

    try:
        up = pinpipe("up", "--detach", "--no-kafka", "--no-emulator")
        assert f"http://127.0.0.1:{ports['aggregator']}/aggregates/posts-per-country" in up
        pinpipe("emulator", "seed-db", "--rows", "300", "--seed", "7")
        yield {
            "tmp": str(tmp_path),
            "aggregates": f"http://127.0.0.1:{ports['aggregator']}",
            **{k: v for k, v in env.items() if k.startswith("PINPIPE_")},
        }
    finally:
        subprocess.run(
            [sys.executable, "-m", "cli.main", "down"],
            cwd=tmp_path,
            env={**env, "PYTHONPATH": str(REPO_ROOT)},
            timeout=120,
            check=False,
        )
        for log in sorted((tmp_path / "var" / "log").glob("*.log")):
            print(
                f"--- {log.name} (tail)\n"
                + "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            )


def _run_emulator(pipeline: dict[str, str], sent_log: Path) -> None:
    env = {
        **os.environ,
        **{k: v for k, v in pipeline.items() if k.startswith("PINPIPE_")},
        "PYTHONPATH": str(REPO_ROOT),
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli.main",
            "emulator",
            "run",
            "--count",
            str(POSTS),
            "--rate",
            "0",
            "--batch-size",
            "25",
            "--seed",
            "11",
            "--sent-log",
            str(sent_log),
            "--no-metrics",
        ],
        cwd=pipeline["tmp"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"posted {POSTS} posts" in result.stdout


def test_counts_live_and_in_the_lake_equal_what_the_emulator_sent(
    pipeline: dict[str, str], tmp_path: Path
) -> None:
    sent_log = tmp_path / "sent.jsonl"
    _run_emulator(pipeline, sent_log)
    sent = [json.loads(line) for line in sent_log.read_text().splitlines()]
    assert len(sent) == POSTS
    country_of = {post["geo"]["ind"]: post["geo"]["country"] for post in sent}
    assert len(country_of) < POSTS, "the emulator re-picks rows, as the original did"
    expected = dict(Counter(country_of.values()))

    def live() -> dict[str, int] | None:
        rows = httpx.get(
            pipeline["aggregates"] + "/aggregates/posts-per-country", timeout=5
        ).json()["rows"]
        counts = {r["country"]: r["post_count"] for r in rows}
        return counts if counts == expected else None

    def lake() -> dict[str, int] | None:
        settings = BatchSettings(
            lake_url=pipeline["PINPIPE_LAKE_URL"],
            s3_endpoint_url=pipeline["PINPIPE_S3_ENDPOINT_URL"],
            s3_access_key_id=SecretStr(pipeline["PINPIPE_S3_ACCESS_KEY_ID"]),
            s3_secret_access_key=SecretStr(pipeline["PINPIPE_S3_SECRET_ACCESS_KEY"]),
        )
        columns, rows = run_question(settings.open_lake(), "posts-per-country")
        assert columns == ["country", "post_count"]
        counts = {country: count for country, count in rows}
        return counts if counts == expected else None

    wait_until(live, timeout=120, interval=1, what="the aggregator's counts to equal what was sent")
    wait_until(lake, timeout=120, interval=1, what="the lake's counts to equal what was sent")

    # Re-post some posts with changed values, through the REST API as the original clients
    # did: every live answer must then equal the batch query over the lake, row for row.
    prefix = pipeline["PINPIPE_TOPIC_PREFIX"]
    changed = {
        "geo": [{**post["geo"], "country": "Aruba"} for post in sent[:15]],
        "pin": [{**post["pin"], "category": "quotes"} for post in sent[10:25]],
        "user": [{**post["user"], "age": 61} for post in sent[20:35]],
    }
    for record_type, records in changed.items():
        response = httpx.post(
            f"{pipeline['PINPIPE_EMULATOR_API_URL']}/topics/{prefix}.{record_type}",
            json={"records": [{"value": record} for record in records]},
            headers={"Content-Type": "application/vnd.kafka.json.v2+json"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
    settings = BatchSettings(
        lake_url=pipeline["PINPIPE_LAKE_URL"],
        s3_endpoint_url=pipeline["PINPIPE_S3_ENDPOINT_URL"],
        s3_access_key_id=SecretStr(pipeline["PINPIPE_S3_ACCESS_KEY_ID"]),
        s3_secret_access_key=SecretStr(pipeline["PINPIPE_S3_SECRET_ACCESS_KEY"]),
    )

    def live_equals_batch() -> dict[str, Any] | None:
        batch = run_questions(settings.open_lake(), list(QUESTIONS), "default")
        if dict(batch["posts-per-country"][1]).get("Aruba", 0) < 15:
            return None  # the lake has not caught up with the changes yet
        for name, (columns, rows) in batch.items():
            body = httpx.get(f"{pipeline['aggregates']}/aggregates/{name}", timeout=10).json()
            if [tuple(row[c] for c in columns) for row in body.get("rows", [])] != rows:
                return None
        return batch

    wait_until(
        live_equals_batch,
        timeout=180,
        interval=2,
        what="every live answer to equal `pinpipe query` over the lake after changed re-posts",
    )
