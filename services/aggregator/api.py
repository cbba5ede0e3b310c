"""The live aggregates endpoint: ``GET /aggregates`` and ``GET /aggregates/<question>``.

Rows have the same columns as the batch query of the same name (``pinpipe query``), plus
``as_of`` and the offsets the answer reflects.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import faust
import faust.web

from services.aggregator.counts import totals
from services.aggregator.tables import Tables

QUESTIONS = {"posts-per-country": "Posts per country, all time (latest geo record per post)"}


def posts_per_country(tables: Tables) -> list[dict[str, Any]]:
    counted = totals(tables.country_posts.items())
    ordered = sorted(counted.items(), key=lambda item: (-item[1], item[0] or ""))
    return [{"country": country, "post_count": count} for country, count in ordered]


def register_pages(app: faust.App, tables: Tables) -> None:
    @app.page("/aggregates")
    async def index(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        return web.json(
            {"questions": [{"name": n, "description": d} for n, d in QUESTIONS.items()]}
        )

    @app.page("/aggregates/posts-per-country")
    async def posts(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        return web.json(
            {
                "question": "posts-per-country",
                "rows": posts_per_country(tables),
                "as_of": datetime.now(UTC).isoformat(),
                "offsets": {
                    t: {str(p): o for p, o in ps.items()} for t, ps in tables.offsets.items()
                },
            }
        )
