"""Entry point of the aggregator: ``pinpipe aggregator``.

The worker starts once Kafka answers, and starts again in place after it stopped on an error
(``lifecycle.py``). Local tables are trusted only after a clean shutdown: a marker file is
written when the worker stops cleanly and removed when it starts; starting without it (the
process was killed, or the worker failed) drops the local RocksDB files, so the tables are
restored from their changelog topic (see tables.py).
"""

from __future__ import annotations

import logging
import shutil
import sys
import time
from pathlib import Path

from services.aggregator.app import create_app, run_worker
from services.aggregator.config import AggregatorSettings
from services.aggregator.lifecycle import Restarts, restart_in_place, wait_for_kafka
from services.aggregator.metrics import RESTARTS
from shared.logs import configure_logging
from shared.retry import EXIT_GAVE_UP, GaveUp

log = logging.getLogger("pinpipe.aggregator")


def trust_local_tables(tabledir: Path, marker: Path) -> bool:
    """Whether the local tables in ``tabledir`` may be kept: yes after a clean shutdown (or
    when there are none); else they are removed. The marker is consumed either way."""
    clean = marker.exists() or not tabledir.exists()
    marker.unlink(missing_ok=True)
    if not clean:
        shutil.rmtree(tabledir)
    return clean


def run(settings: AggregatorSettings | None = None) -> None:
    settings = settings or AggregatorSettings()
    configure_logging("aggregator", settings.log_level)
    app, aggregator = create_app(settings)
    restarts = Restarts.load(settings.aggregator_datadir)
    RESTARTS.inc(restarts.count)
    try:
        if not wait_for_kafka(settings, aggregator.posts.changelog_topic.get_topic_name()):
            return  # stopped while waiting
        tabledir = Path(app.conf.tabledir)
        marker = settings.aggregator_datadir / "clean-shutdown"
        if not trust_local_tables(tabledir, marker):
            log.warning(
                "the last run did not stop cleanly: local tables dropped, restoring from changelog"
            )
        started = time.monotonic()
        code = run_worker(app, settings.log_level)
        if code == 0 and aggregator.crashed is None:
            marker.touch()
            return
        reason = aggregator.crashed or f"the Faust worker exited with code {code}"
        restart_in_place(settings, reason, time.monotonic() - started)
    except GaveUp as exc:
        log.error(f"aggregator gave up: {exc}")
        sys.exit(EXIT_GAVE_UP)
    sys.exit(1)  # a signal stopped the wait before the restart
