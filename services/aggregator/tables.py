"""The aggregator's Faust tables and the agent that keeps them."""

from __future__ import annotations

from dataclasses import dataclass, field

import faust
import orjson
from faust.types import TableT

from services.aggregator.counts import apply_latest
from services.aggregator.metrics import RECORDS, SKIPPED
from shared.topics import clean_topic


@dataclass
class Tables:
    geo_country: TableT  # ind -> latest country
    country_posts: TableT  # [partition, country] -> posts
    offsets: dict[str, dict[int, int]] = field(default_factory=dict)  # topic -> partition -> offset


def register_tables(app: faust.App, partitions: int) -> Tables:
    tables = Tables(
        geo_country=app.Table("geo-country", default=None, partitions=partitions),
        country_posts=app.Table("country-posts", default=int, partitions=partitions),
    )
    geo_topic = app.topic(clean_topic("geo"), key_serializer="raw", value_serializer="raw")

    @app.agent(geo_topic, name="aggregate-geo")
    async def aggregate_geo(stream: faust.StreamT) -> None:
        async for event in stream.events():
            message = event.message
            try:
                record = orjson.loads(event.value)
                ind = int(record["ind"])
                country = record.get("country")
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                SKIPPED.labels(reason="unreadable").inc()
                continue
            apply_latest(tables.geo_country, tables.country_posts, message.partition, ind, country)
            tables.offsets.setdefault(message.topic, {})[message.partition] = message.offset
            RECORDS.labels(type="geo").inc()

    return tables
