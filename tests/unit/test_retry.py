"""Waiting out a dependency (shared/retry.py), the supervised loop (shared/http_service.py) and
the log's held-back repeats (shared/logs.py): pure logic, no servers."""

from __future__ import annotations

import asyncio
import logging
import random

import pytest

from shared.http_service import SupervisedLoop
from shared.logs import RepeatFilter
from shared.retry import Attempts, Backoff, GaveUp, retry


def test_backoff_doubles_up_to_its_cap_and_stays_spaced() -> None:
    backoff = Backoff(first=0.5, cap=4.0)
    rng = random.Random(1)
    bounds = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    for attempt, bound in enumerate(bounds, start=1):
        delays = [backoff.delay(attempt, rng) for _ in range(200)]
        assert bound / 2 <= min(delays) and max(delays) <= bound


def test_attempts_give_up_only_past_the_limit_and_say_why() -> None:
    attempts = Attempts(Backoff(first=0.01, cap=0.01, give_up_after=0.05), "kafka")
    attempts.failed(ConnectionError("refused"))
    assert attempts.count == 1
    attempts.first_failure = (attempts.first_failure or 0.0) - 1.0  # failing for a second
    with pytest.raises(GaveUp, match=r"kafka: still failing after 1s and 2 attempts.*refused"):
        attempts.failed(ConnectionError("refused"))


def test_attempts_never_give_up_without_a_limit() -> None:
    attempts = Attempts(Backoff(first=0.01, cap=0.01), "kafka")
    attempts.failed("away")
    attempts.first_failure = (attempts.first_failure or 0.0) - 86_400
    assert attempts.failed("away") <= 0.01


async def test_retry_waits_until_the_dependency_answers() -> None:
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 4:
            raise ConnectionError(f"refused {calls}")
        return "connected"

    assert await retry("db", flaky, Backoff(first=0.001, cap=0.002)) == "connected"
    assert calls == 4


async def test_retry_raises_permanent_errors_at_once() -> None:
    calls = 0

    async def broken() -> None:
        nonlocal calls
        calls += 1
        raise LookupError("no such table")

    with pytest.raises(LookupError):
        await retry("db", broken, Backoff(first=0.001), permanent=(LookupError,))
    assert calls == 1


async def test_retry_stops_waiting_when_asked() -> None:
    stop = asyncio.Event()

    async def away() -> None:
        stop.set()
        raise ConnectionError("refused")

    with pytest.raises(asyncio.CancelledError):
        await retry("kafka", away, Backoff(first=60, cap=60), stop=stop)


class _Loop:
    """A loop that crashes ``crashes`` times (one per instance made), then runs until stopped."""

    made = 0

    def __init__(self, crashes: int, started: asyncio.Event) -> None:
        _Loop.made += 1
        self.number = _Loop.made
        self.crashes = crashes
        self.started = started
        self.ready = False

    async def run(self, stop: asyncio.Event) -> None:
        if self.number <= self.crashes:
            raise RuntimeError(f"crash {self.number}")
        self.ready = True
        self.started.set()
        await stop.wait()


async def test_a_crashed_loop_is_started_again_as_a_new_loop() -> None:
    _Loop.made = 0
    started, stop = asyncio.Event(), asyncio.Event()
    supervised = SupervisedLoop("test", lambda: _Loop(2, started), Backoff(first=0.001, cap=0.002))
    task = asyncio.create_task(supervised.run(stop))
    await asyncio.wait_for(started.wait(), 5)
    assert supervised.restarts == 2 and _Loop.made == 3
    assert supervised.crashed is None and supervised.ready
    stop.set()
    await task


async def test_a_loop_that_keeps_crashing_gives_up_past_the_limit() -> None:
    _Loop.made = 0
    supervised = SupervisedLoop(
        "test", lambda: _Loop(10**6, asyncio.Event()), Backoff(0.01, 0.01, give_up_after=0.05)
    )
    with pytest.raises(GaveUp, match="test loop"):
        await asyncio.wait_for(supervised.run(asyncio.Event()), 5)
    assert supervised.crashed is not None and not supervised.ready


def test_repeats_of_a_library_message_are_held_back_then_counted() -> None:
    held = RepeatFilter(window=3600)

    def record(name: str, msg: str) -> logging.LogRecord:
        return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, ("node 1",), None)

    assert held.filter(record("aiokafka.conn", "Unable connect to %s"))
    assert not any(held.filter(record("aiokafka.conn", "Unable connect to %s")) for _ in range(50))
    assert held.filter(record("aiokafka.conn", "another message %s"))
    assert all(held.filter(record("services.cleaner", "ours %s")) for _ in range(3))
    held.window = 0.0
    again = record("aiokafka.conn", "Unable connect to %s")
    assert held.filter(again) and getattr(again, "repeated", 0) == 50
