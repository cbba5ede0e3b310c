"""The cleaner benchmark's baseline: the least code that consumes, cleans and produces.

One aiokafka consumer (manual commits) and one producer: ``getmany`` → the cleaner's own
``process()`` per record → ``send`` → wait for delivery → commit. At-least-once, no
transactions, no Faust, no metrics. Run by ``bench.cleaner_bench`` in a process of its own:

    python -m bench.minimal_cleaner --bootstrap HOST:PORT --group G --out-suffix S TOPIC...
"""

from __future__ import annotations

import argparse
import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.cleaner.processing import Cleaned, process
from shared.topics import DLQ_TOPIC


async def run(bootstrap: str, group: str, out_suffix: str, topics: list[str]) -> None:
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=5000,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_batch_size=512 * 1024,
    )
    await consumer.start()
    await producer.start()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=100, max_records=5000)
            futures = []
            for messages in batches.values():
                for message in messages:
                    result = process(
                        message.topic, message.partition, message.offset, message.value, 1 << 20
                    )
                    if isinstance(result, Cleaned):
                        topic, key = result.topic + out_suffix, result.key
                    else:
                        topic, key = DLQ_TOPIC + out_suffix, None
                    futures.append(await producer.send(topic, result.value, key=key))
            if futures:
                await asyncio.gather(*futures)
                await consumer.commit()
    finally:
        await producer.stop()
        await consumer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--out-suffix", required=True, help="suffix of the output topics")
    parser.add_argument("topics", nargs="+")
    args = parser.parse_args()
    asyncio.run(run(args.bootstrap, args.group, args.out_suffix, args.topics))


if __name__ == "__main__":
    main()
