"""The baselines of the aggregator benchmark: a Faust worker that reads the clean topics with the
aggregator's consumer settings and does nothing per event (no table, no parsing): Faust's own
per-event ceiling on this machine. With ``--table-write`` it writes each record, as it came, to
a RocksDB table with a changelog (the aggregator's store and producer settings): the ceiling of
any aggregator that keeps a Faust table up to date per event.

    python -m bench.faust_baseline --bootstrap HOST:PORT --group NAME --datadir DIR [--table-write]
"""

from __future__ import annotations

import argparse
import logging

import faust

from shared.kafka_security import KafkaConnection
from shared.topics import clean_topics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--datadir", required=True)
    parser.add_argument("--table-write", action="store_true", help="one table write per event")
    parser.add_argument("--partitions", type=int, default=4, help="of the clean topics (4)")
    args = parser.parse_args()
    app = faust.App(
        args.group,
        broker=KafkaConnection(args.bootstrap).faust_broker(),
        store="rocksdb://" if args.table_write else "memory://",
        datadir=args.datadir,
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        broker_commit_every=10_000,
        broker_commit_interval=1.0,
        autodiscover=False,
        topic_partitions=args.partitions,
        topic_replication_factor=1,
        producer_acks=-1,
        producer_linger=0.02,
        table_key_serializer="raw",
        table_value_serializer="raw",
    )
    topic = app.topic(*clean_topics(), key_serializer="raw", value_serializer="raw")
    table = (
        app.Table("records", default=None, partitions=args.partitions) if args.table_write else None
    )

    @app.agent(topic, name="baseline")
    async def baseline(stream: faust.StreamT[bytes]) -> None:
        if table is None:
            async for _ in stream.events():
                pass
        else:
            async for event in stream.events():
                table[event.key] = event.value

    worker = faust.Worker(app, loglevel=logging.WARNING, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
