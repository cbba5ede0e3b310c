"""The live aggregates endpoint (JSON), served by every replica:

- ``GET /aggregates``: the questions (the names of ``pinpipe query list``), which take a window
- ``GET /aggregates/<question>[?window=all|<N>m|<N>s]``: rows with the columns of the batch
  query of the same name, plus ``as_of``, the ``offsets`` the answer reflects and the
  ``partitions`` it covers
- ``GET /aggregates/countries/<country>`` and ``GET /aggregates/age-groups/<group>``:
  drill-downs
- ``GET /internal/aggregates``: this replica's partial aggregates, for the other replicas

Any replica answers any request: it gathers the partials of the replicas that own the other
partitions (Faust's assignment says which) and adds them up. Errors are
``{"error_code", "message"}`` (HTTP status times 100, plus n), as the ingest API's.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import faust
import faust.web
import httpx

from batch.questions import QUESTIONS
from services.aggregator import metrics as m
from services.aggregator.answers import ANSWERS, WINDOWED, Buckets, answer
from services.aggregator.posts import Key
from services.aggregator.state import from_json, merge, to_json
from services.aggregator.tables import POSTS_TABLE, Aggregator

WINDOW = re.compile(r"^(\d+)([ms])$")


class ApiError(Exception):
    def __init__(self, status: int, error_code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.error_code, self.message = status, error_code, message


class Gathered:
    """The aggregates of every partition, gathered from the replicas that own them."""

    def __init__(self, counts: Counter[Key], offsets: dict[str, dict[str, int]]) -> None:
        self.counts = counts
        self.offsets = offsets


class AggregatesApi:
    def __init__(
        self,
        app: faust.App,
        aggregator: Aggregator,
        advertised_url: str,
        retention_seconds: int,
        peer_timeout: float,
    ) -> None:
        self.app = app
        self.aggregator = aggregator
        self.advertised_url = advertised_url.rstrip("/")
        self.retention_seconds = retention_seconds
        self.peer_timeout = peer_timeout

    def local(self) -> dict[str, Any]:
        """This replica's partial (``GET /internal/aggregates``)."""
        aggregates = self.aggregator.aggregates
        return {
            "ready": self.aggregator.ready,
            "partitions": self.aggregator.active_partitions(),
            "counts": to_json(aggregates.partial()),
            "offsets": [[t, p, o] for (t, p), o in aggregates.offsets.items()],
        }

    async def gather(self) -> Gathered:
        """Every partition's aggregates, or ApiError(503) while some are not served."""
        peers = [
            url.rstrip("/")
            for url in self.app.router.table_metadata(POSTS_TABLE)
            if url.rstrip("/") != self.advertised_url
        ]
        parts = [self.local()]
        if peers:
            async with httpx.AsyncClient(timeout=self.peer_timeout) as client:
                parts += await asyncio.gather(*(self._peer(client, url) for url in peers))
        if not all(part["ready"] for part in parts):
            raise ApiError(503, 50301, "recovering: an owner of some partitions is not ready")
        covered = {p for part in parts for p in part["partitions"]}
        missing = set(range(self.aggregator.partitions)) - covered
        if missing:
            raise ApiError(503, 50302, f"partitions {sorted(missing)} have no owner yet")
        offsets: dict[str, dict[str, int]] = {}
        for part in parts:
            for topic, partition, offset in part["offsets"]:
                if partition in part["partitions"]:
                    offsets.setdefault(topic, {})[str(partition)] = offset
        return Gathered(merge(from_json(part["counts"]) for part in parts), offsets)

    async def _peer(self, client: httpx.AsyncClient, url: str) -> dict[str, Any]:
        try:
            response = await client.get(f"{url}/internal/aggregates")
            response.raise_for_status()
            result: dict[str, Any] = response.json()
            return result
        except (httpx.HTTPError, ValueError) as exc:
            m.PEER_ERRORS.inc()
            raise ApiError(503, 50303, f"replica {url} did not answer: {exc}") from exc

    def buckets(self, window: str | None) -> Buckets:
        """The time buckets of ``?window=`` (None: all time)."""
        if window in (None, "", "all"):
            return None
        assert window is not None
        match = WINDOW.match(window)
        if not match:
            raise ApiError(422, 42201, f"window must be all, <N>m or <N>s, not {window!r}")
        seconds = int(match.group(1)) * (60 if match.group(2) == "m" else 1)
        if not 0 < seconds <= self.retention_seconds:
            raise ApiError(422, 42202, f"window must be between 1s and {self.retention_seconds}s")
        width = self.aggregator.aggregates.bucket_seconds
        now = int(time.time() // width)
        return range(now - math.ceil(seconds / width) + 1, now + 1)

    async def question(self, name: str, window: str | None) -> dict[str, Any]:
        if name not in ANSWERS:
            raise ApiError(404, 40401, f"unknown question {name!r}; see GET /aggregates")
        buckets = self.buckets(window)
        if buckets is not None and name not in WINDOWED:
            raise ApiError(422, 42203, f"{name} takes no window; windowed: {sorted(WINDOWED)}")
        gathered = await self.gather()
        columns, rows = answer(name, gathered.counts, buckets)
        return {
            "question": name,
            "window": window or "all",
            "columns": columns,
            "rows": [dict(zip(columns, row, strict=True)) for row in rows],
            **self._stamp(gathered),
        }

    async def country(self, country: str, window: str | None) -> dict[str, Any]:
        buckets = self.buckets(window)
        gathered = await self.gather()
        counts = gathered.counts
        _, posts = answer("posts-per-country", counts)
        _, categories = answer("posts-per-country-and-category", counts, buckets)
        _, followed = answer("most-followed-user-per-country", counts)
        user = next(
            ({"poster_name": p, "follower_count": f} for g, p, f in followed if g == country), None
        )
        return {
            "country": country,
            "window": window or "all",
            "posts": next((n for g, n in posts if g == country), 0),
            **_categories_of(country, categories),
            "most_followed_user": user,
            **self._stamp(gathered),
        }

    async def age_group(self, group: str, window: str | None) -> dict[str, Any]:
        buckets = self.buckets(window)
        gathered = await self.gather()
        counts = gathered.counts
        _, categories = answer("posts-per-age-group-and-category", counts, buckets)
        _, medians = answer("median-follower-count-per-age-group", counts)
        _, by_year = answer("median-follower-count-by-age-group-and-join-year", counts)
        return {
            "age_group": group,
            "window": window or "all",
            **_categories_of(group, categories),
            "median_follower_count": next((v for g, v in medians if g == group), None),
            "median_follower_count_by_join_year": [
                {"post_year": y, "median_follower_count": v} for g, y, v in by_year if g == group
            ],
            **self._stamp(gathered),
        }

    @staticmethod
    def _stamp(gathered: Gathered) -> dict[str, Any]:
        return {"as_of": datetime.now(UTC).isoformat(), "offsets": gathered.offsets}


def _categories_of(group: Any, rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    """One group's (group, category, count) rows, and its most popular categories."""
    mine = [(c, n) for g, c, n in rows if g == group]
    top = max((n for _, n in mine), default=0)
    return {
        "categories": [{"category": c, "category_count": n} for c, n in mine],
        "most_popular_categories": [c for c, n in mine if n == top and top],
    }


def register_pages(app: faust.App, api: AggregatesApi) -> None:
    async def answering(web: faust.web.View, work: Any) -> faust.web.Response:
        try:
            return web.json(await work)
        except ApiError as error:
            return web.json(
                {"error_code": error.error_code, "message": error.message}, status=error.status
            )

    @app.page("/aggregates")
    async def index(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        return web.json(
            {
                "questions": [
                    {"name": q.name, "description": q.description, "windowed": q.name in WINDOWED}
                    for q in QUESTIONS.values()
                ]
            }
        )

    @app.page("/aggregates/{question}")
    async def question(
        web: faust.web.View, request: faust.web.Request, question: str
    ) -> faust.web.Response:
        return await answering(web, api.question(question, request.query.get("window")))

    @app.page("/aggregates/countries/{country}")
    async def country(
        web: faust.web.View, request: faust.web.Request, country: str
    ) -> faust.web.Response:
        return await answering(web, api.country(country, request.query.get("window")))

    @app.page("/aggregates/age-groups/{group}")
    async def age_group(
        web: faust.web.View, request: faust.web.Request, group: str
    ) -> faust.web.Response:
        return await answering(web, api.age_group(group, request.query.get("window")))

    @app.page("/internal/aggregates")
    async def local(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        return web.json(api.local())
