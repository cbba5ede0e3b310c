"""Waiting out a dependency that is away (Kafka, the S3 store, the source database, the ingest
API): capped exponential backoff with full jitter, one log line per failed attempt, and an
optional limit after which the caller gives up and says why.

Every service waits this way at start-up and whenever its loop has to start again, so that no
process exits because a dependency is briefly away (``PINPIPE_RETRY_MAX_BACKOFF_SECONDS``,
``PINPIPE_GIVE_UP_AFTER_SECONDS``). Pure logic apart from the sleeps: no service knowledge.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)
EXIT_GAVE_UP = 3  # the exit code of a service that gave up on a dependency


class GaveUp(Exception):
    """A dependency stayed away longer than the configured limit; the message says which and
    the last error seen. A service that gets this stops with a non-zero exit code."""


@dataclass(frozen=True)
class Backoff:
    """``first`` seconds after the first failure, doubling up to ``cap``; ``give_up_after``
    seconds of failing (None: never) end the waiting with :class:`GaveUp`."""

    first: float = 0.5
    cap: float = 10.0
    give_up_after: float | None = None

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """The wait after failed attempt number ``attempt`` (1-based): full jitter below the
        exponential bound, but never less than half of it (so attempts stay spaced)."""
        bound = min(self.cap, self.first * 2 ** max(attempt - 1, 0))
        return (rng or random).uniform(bound / 2, bound)


@dataclass
class Attempts:
    """How long and how often one dependency has failed, across calls (a loop that restarts
    keeps its count, so the limit spans the whole outage)."""

    backoff: Backoff
    what: str
    count: int = 0
    first_failure: float | None = None
    last_error: str = ""
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def failed(self, error: BaseException | str) -> float:
        """Record a failure; the delay before the next attempt. Raises :class:`GaveUp` when the
        dependency has been away longer than the limit."""
        now = time.monotonic()
        if self.first_failure is None:
            self.first_failure = now
        self.count += 1
        self.last_error = error if isinstance(error, str) else repr(error)
        away = now - self.first_failure
        limit = self.backoff.give_up_after
        if limit is not None and away >= limit:
            raise GaveUp(
                f"{self.what}: still failing after {away:.0f}s and {self.count} attempts "
                f"(limit PINPIPE_GIVE_UP_AFTER_SECONDS={limit:g}); last error: {self.last_error}"
            )
        return self.backoff.delay(self.count, self._rng)

    def succeeded(self) -> None:
        if self.count:
            log.info(
                f"{self.what}: available again",
                extra={"attempts": self.count, "after_seconds": round(self.away_seconds, 1)},
            )
        self.count = 0
        self.first_failure = None

    @property
    def away_seconds(self) -> float:
        return 0.0 if self.first_failure is None else time.monotonic() - self.first_failure


async def retry(
    what: str,
    attempt: Callable[[], Awaitable[T]],
    backoff: Backoff,
    *,
    stop: asyncio.Event | None = None,
    attempts: Attempts | None = None,
    permanent: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``attempt`` until it returns, waiting with backoff after each exception (logged with
    the attempt number and the next delay). Exceptions of ``permanent`` types are raised at
    once; :class:`GaveUp` is raised past the limit, and ``asyncio.CancelledError`` when ``stop``
    is set while waiting."""
    tries = attempts or Attempts(backoff, what)
    never_retried: tuple[type[BaseException], ...] = (asyncio.CancelledError, GaveUp, *permanent)
    while True:
        try:
            result = await attempt()
        except never_retried:
            raise
        except Exception as exc:
            delay = tries.failed(exc)
            log.warning(
                f"{what}: unavailable; retrying",
                extra={"attempt": tries.count, "delay": round(delay, 2), "error": repr(exc)},
            )
            if await sleep_or_stop(delay, stop):
                raise asyncio.CancelledError(f"stopped while waiting for {what}") from exc
            continue
        tries.succeeded()
        return result


async def sleep_or_stop(seconds: float, stop: asyncio.Event | None) -> bool:
    """Sleep ``seconds``, or less when ``stop`` is set meanwhile; whether it was set."""
    if stop is None:
        await asyncio.sleep(seconds)
        return False
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    return True
