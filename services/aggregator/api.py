"""The live aggregates endpoint (JSON), served by every replica:

- ``GET /aggregates``: the questions (the names of ``pinpipe query list``), which take a window
- ``GET /aggregates/<question>[?window=all|<N>m|<N>s]``: rows with the columns of the batch
  query of the same name, plus ``as_of``, the ``offsets`` the answer reflects and the
  ``partitions`` it covers
- ``GET /aggregates/countries/<country>`` and ``GET /aggregates/age-groups/<group>``:
  drill-downs
- ``GET /openapi.json``: the OpenAPI document of these routes (openapi.py)
- ``GET /internal/aggregates``: this replica's partial aggregates, for the other replicas,
  on the internal port only (``PINPIPE_AGGREGATOR_INTERNAL_PORT``), answered only to the
  addresses of the consumer group's members

Any replica answers any request: it gathers the partials of the replicas that own the other
partitions and adds them up. It asks only the members of the consumer group, at the internal
URLs they advertise through it (Faust's assignment), never a URL a request names. Errors are
``{"error_code", "message"}`` (HTTP status times 100, plus n), as the ingest API's; every
client mistake is a 4xx, counted in ``pinpipe_aggregator_rejected_requests_total{reason}``,
and values are limited in size before they are read.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import re
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import faust
import faust.web
import httpx
from aiohttp import web as aioweb
from yarl import URL

from services.aggregator import metrics as m
from services.aggregator.answers import ANSWERS, Buckets, answer
from services.aggregator.openapi import MAX_NAME_CHARS, MAX_QUERY_CHARS, MAX_WINDOW_CHARS, openapi
from services.aggregator.posts import Key
from services.aggregator.state import from_json, merge, to_json
from services.aggregator.tables import POSTS_TABLE, Aggregator
from shared.questions import QUESTIONS, WINDOWED

log = logging.getLogger("pinpipe.aggregator")
WINDOW = re.compile(r"^(\d+)([ms])$")
Handler = Callable[[aioweb.Request], Awaitable[aioweb.StreamResponse]]


class ApiError(Exception):
    """An answer other than 200. ``reason`` (a fixed word, never request data) labels the
    rejected-requests counter for client mistakes (4xx)."""

    def __init__(self, status: int, error_code: int, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.status, self.error_code, self.message = status, error_code, message
        self.reason = reason


def error_response(error: ApiError, headers: dict[str, str] | None = None) -> aioweb.Response:
    """The error format; a 4xx is counted as a rejected request."""
    if 400 <= error.status < 500:
        m.REJECTED.labels(error.reason or "other").inc()
    return aioweb.json_response(
        {"error_code": error.error_code, "message": error.message},
        status=error.status,
        headers=headers,
    )


# what the router itself refuses (no such route, a method a route does not take)
_ROUTER_ERRORS = {
    404: (40402, "not_found", "no such route; see GET /openapi.json"),
    405: (40501, "method_not_allowed", "method not allowed; see GET /openapi.json"),
}


@aioweb.middleware
async def errors_middleware(request: aioweb.Request, handler: Handler) -> aioweb.StreamResponse:
    """Every error of a pinpipe aggregator port in the error format: size limits first, then
    the handler's ApiError, the router's 404/405, and (a bug) any other exception as a 500."""
    try:
        _check_sizes(request)
        return await handler(request)
    except ApiError as error:
        return error_response(error)
    except aioweb.HTTPException as exc:
        if exc.status < 400:
            raise
        code, reason, message = _ROUTER_ERRORS.get(
            exc.status, (exc.status * 100 + 1, "refused", exc.reason)
        )
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return error_response(ApiError(exc.status, code, message, reason), allow)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("the aggregator failed to answer", extra={"path": request.path[:200]})
        return error_response(ApiError(500, 50001, "internal error; see the aggregator's log"))


def _check_sizes(request: aioweb.Request) -> None:
    """Refuse ``?window=`` values and query strings longer than the API takes, before any is
    parsed further (``int()`` of thousands of digits raises). The request line itself is
    bounded by aiohttp (8 KiB)."""
    windows = request.query.getall("window", [])
    if any(len(window) > MAX_WINDOW_CHARS for window in windows):
        raise ApiError(
            400,
            40001,
            f"window is at most {MAX_WINDOW_CHARS} characters (all, <N>m or <N>s)",
            "too_long",
        )
    if len(windows) > 1:
        raise ApiError(400, 40004, "window is given more than once", "repeated_parameter")
    if len(request.query_string) > MAX_QUERY_CHARS:
        raise ApiError(
            400, 40003, f"the query string is at most {MAX_QUERY_CHARS} characters", "too_long"
        )


def _bounded(what: str, value: str) -> str:
    """A path value, refused when longer than MAX_NAME_CHARS."""
    if len(value) > MAX_NAME_CHARS:
        raise ApiError(400, 40002, f"{what} is at most {MAX_NAME_CHARS} characters", "too_long")
    return value


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
        internal_url: str,
        retention_seconds: int,
        peer_timeout: float,
    ) -> None:
        self.app = app
        self.aggregator = aggregator
        self.internal_url = internal_url.rstrip("/")
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

    def members(self) -> list[str]:
        """The internal URLs of the consumer group's current members, this replica's included,
        as the group's last assignment told it (each member advertises its own)."""
        return sorted({url.rstrip("/") for url in self.app.router.table_metadata(POSTS_TABLE)})

    async def member_addresses(self) -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        """The IP addresses of the members' hosts (names resolved)."""
        loop = asyncio.get_running_loop()
        addresses: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
        for url in self.members():
            host = URL(url).host or ""
            try:
                addresses.add(_address(host))
            except ValueError:
                try:
                    infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
                except OSError:
                    continue  # a member whose name does not resolve is not let in
                addresses |= {_address(str(info[4][0])) for info in infos}
        return addresses

    async def gather(self) -> Gathered:
        """Every partition's aggregates, or ApiError(503) while some are not served."""
        peers = [url for url in self.members() if url != self.internal_url]
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
        parsed = URL(url)
        usable = parsed.scheme in ("http", "https") and parsed.host and parsed.path in ("", "/")
        if not usable:
            m.PEER_ERRORS.inc()
            raise ApiError(503, 50304, "a member of the group advertises no usable URL")
        try:
            response = await client.get(str(parsed.with_path("/internal/aggregates")))
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
        if len(window) > MAX_WINDOW_CHARS:
            message = f"window is at most {MAX_WINDOW_CHARS} characters"
            raise ApiError(400, 40001, message, "too_long")
        match = WINDOW.match(window)
        if not match:
            raise ApiError(
                422, 42201, f"window must be all, <N>m or <N>s, not {window!r}", "bad_window"
            )
        seconds = int(match.group(1)) * (60 if match.group(2) == "m" else 1)
        if not 0 < seconds <= self.retention_seconds:
            raise ApiError(
                422,
                42202,
                f"window must be between 1s and {self.retention_seconds}s",
                "window_out_of_range",
            )
        width = self.aggregator.aggregates.bucket_seconds
        now = int(time.time() // width)
        return range(now - math.ceil(seconds / width) + 1, now + 1)

    async def question(self, name: str, window: str | None) -> dict[str, Any]:
        if name not in ANSWERS:
            raise ApiError(
                404,
                40401,
                f"unknown question {_bounded('question', name)!r}; see GET /aggregates",
                "unknown_question",
            )
        buckets = self.buckets(window)
        if buckets is not None and name not in WINDOWED:
            raise ApiError(
                422,
                42203,
                f"{name} takes no window; windowed: {sorted(WINDOWED)}",
                "window_not_taken",
            )
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
        _bounded("country", country)
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
        _bounded("age group", group)
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


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An IP address (IPv4-mapped IPv6 as IPv4); ValueError for a name."""
    address = ipaddress.ip_address(host.strip("[]"))
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def register_pages(app: faust.App, api: AggregatesApi) -> None:
    """The public routes, on Faust's web server (the public port). An ApiError raised by a
    handler reaches errors_middleware, which answers in the error format."""
    document = openapi(sorted(ANSWERS), sorted(WINDOWED), api.retention_seconds)

    @app.page("/openapi.json")
    async def schema(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        return web.json(document)

    @app.page("/aggregates")
    async def index(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        return web.json(
            {
                "questions": [
                    {"name": q.name, "description": q.description, "windowed": q.takes_window}
                    for q in QUESTIONS.values()
                ]
            }
        )

    @app.page("/aggregates/{question}")
    async def question(
        web: faust.web.View, request: faust.web.Request, question: str
    ) -> faust.web.Response:
        return web.json(await api.question(question, request.query.get("window")))

    @app.page("/aggregates/countries/{country}")
    async def country(
        web: faust.web.View, request: faust.web.Request, country: str
    ) -> faust.web.Response:
        return web.json(await api.country(country, request.query.get("window")))

    @app.page("/aggregates/age-groups/{group}")
    async def age_group(
        web: faust.web.View, request: faust.web.Request, group: str
    ) -> faust.web.Response:
        return web.json(await api.age_group(group, request.query.get("window")))


def internal_app(api: AggregatesApi) -> aioweb.Application:
    """The internal port's routes: ``GET /internal/aggregates``, answered only to requests
    from the address of a member of the consumer group (403 otherwise)."""

    @aioweb.middleware
    async def members_only(request: aioweb.Request, handler: Handler) -> aioweb.StreamResponse:
        try:
            remote = _address(request.remote or "")
        except ValueError:
            remote = None
        if remote is None or remote not in await api.member_addresses():
            raise ApiError(
                403, 40301, "only members of the aggregator's consumer group", "not_a_member"
            )
        return await handler(request)

    async def local(request: aioweb.Request) -> aioweb.Response:
        return aioweb.json_response(api.local())

    app = aioweb.Application(middlewares=[errors_middleware, members_only])
    app.router.add_get("/internal/aggregates", local)
    return app


async def serve_internal(api: AggregatesApi, host: str, port: int) -> None:
    """Serve internal_app on ``host:port`` until cancelled (when the worker stops)."""
    runner = aioweb.AppRunner(internal_app(api), access_log=None)
    await runner.setup()
    try:
        await aioweb.TCPSite(runner, host, port).start()
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
