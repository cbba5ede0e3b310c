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
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from batch.config import BatchSettings
from batch.query import run_questions
from batch.questions import QUESTIONS
from tests.conftest import wait_until
from tests.servers import REPO_ROOT

pytestmark = pytest.mark.e2e
POSTS = 400


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
            "--no-probes",
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
        (columns, rows) = run_questions(settings.open_lake(), ["posts-per-country"])[
            "posts-per-country"
        ]
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
        batch = run_questions(settings.open_lake(), list(QUESTIONS), "standard")
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
