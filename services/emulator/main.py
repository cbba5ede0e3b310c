"""Entry points of the emulator: ``pinpipe emulator seed-db`` and ``pinpipe emulator run``."""

from __future__ import annotations

import asyncio
import logging
import random
import sys
from pathlib import Path

from services.emulator import app, poster, seed
from services.emulator.client import Tally
from services.emulator.config import EmulatorSettings, Mode
from services.emulator.source_db import connect
from shared.logs import configure_logging
from shared.retry import EXIT_GAVE_UP, GaveUp
from shared.topics import RecordType

log = logging.getLogger(__name__)


def seed_db(
    settings: EmulatorSettings,
    db_url: str | None,
    rows: int,
    seed_value: int,
    from_jsonl: Path | None,
) -> dict[RecordType, int]:
    engine = connect(db_url or settings.source_db_url.get_secret_value())
    data = seed.read_jsonl_dir(from_jsonl) if from_jsonl else seed.generated(rows, seed_value)
    return seed.seed(engine, data)


def options(
    settings: EmulatorSettings,
    *,
    mode: Mode | None = None,
    rate: float | None = None,
    random_sleep: bool = False,
    count: int | None = None,
    batch_size: int | None = None,
    concurrency: int = 1,
    seed_value: int | None = None,
    sent_log: Path | None = None,
) -> poster.RunOptions:
    """A run's options: the settings, with what the command line chose instead (None: the
    setting's)."""
    return poster.RunOptions(
        api_url=settings.emulator_api_url,
        prefix=settings.topic_prefix,
        mode=mode or settings.emulator_mode,
        pace=poster.Pace(
            rate=settings.emulator_rate if rate is None else rate, random_sleep=random_sleep
        ),
        count=count,
        batch_size=batch_size or settings.emulator_batch_size,
        concurrency=concurrency,
        shards=settings.topic_partitions,
        api_key=settings.emulator_api_key.get_secret_value() or None,
        seed=seed_value,
        sent_log=sent_log or settings.emulator_sent_log,
        backoff=settings.backoff(),
    )


def run(
    settings: EmulatorSettings,
    run_options: poster.RunOptions,
    replay: Path | None = None,
    serve_probes: bool = True,
) -> Tally:
    """Run the emulator until ``run_options.count`` posts, the end of ``replay``, or
    SIGTERM/SIGINT."""
    configure_logging("emulator", settings.log_level)
    log.info(
        "emulator starting",
        extra={"settings": settings.redacted(), "mode": run_options.mode},
    )
    if replay is not None:
        posts = poster.replayed_posts(replay)
    else:
        engine = connect(settings.source_db_url.get_secret_value())
        posts = poster.random_posts(
            engine, random.Random(run_options.seed), backoff=run_options.backoff
        )
    try:
        tally = asyncio.run(app.run(settings, run_options, posts, serve_probes))
    except GaveUp as exc:  # PINPIPE_GIVE_UP_AFTER_SECONDS passed with a dependency away
        log.error(f"emulator gave up: {exc}")
        sys.exit(EXIT_GAVE_UP)
    return tally
