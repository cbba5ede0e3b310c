"""The baseline of the aggregator benchmark: a Faust worker that reads the clean topics with the
aggregator's consumer settings and does nothing per event (no table, no parsing). Its events/s
are Faust's own per-event ceiling on this machine.

    python -m bench.faust_baseline --bootstrap 127.0.0.1:9092 --group NAME --datadir DIR
"""

from __future__ import annotations

import argparse
import logging

import faust

from services.aggregator.app import broker_url
from shared.topics import clean_topics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--datadir", required=True)
    args = parser.parse_args()
    app = faust.App(
        args.group,
        broker=broker_url(args.bootstrap),
        store="memory://",
        datadir=args.datadir,
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        broker_commit_every=10_000,
        broker_commit_interval=1.0,
        autodiscover=False,
    )
    topic = app.topic(*clean_topics(), key_serializer="raw", value_serializer="raw")

    @app.agent(topic, name="baseline")
    async def baseline(stream: faust.StreamT[bytes]) -> None:
        async for _ in stream.events():
            pass

    worker = faust.Worker(app, loglevel=logging.WARNING, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
