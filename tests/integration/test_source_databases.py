"""The emulator's source on real PostgreSQL and MariaDB (MySQL) servers, as the original RDS:
the three tables with their original columns and types, seeded, read back, posted."""

from __future__ import annotations

import pytest
import sqlalchemy

from services.emulator.seed import generated, seed
from services.emulator.source_db import RowReader, connect, has_tables
from tests.source_rows import read_post

pytestmark = pytest.mark.integration


@pytest.fixture(params=["postgres", "mysql"])
def database_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_url"))


def test_seed_and_read_on_a_real_server(database_url: str) -> None:
    engine = connect(database_url)
    counts = seed(engine, generated(200, seed_value=4))
    assert counts == {"pin": 200, "geo": 200, "user": 200}
    assert has_tables(engine)
    columns = {
        c["name"]: c["type"] for c in sqlalchemy.inspect(engine).get_columns("pinterest_data")
    }
    assert isinstance(columns["follower_count"], sqlalchemy.Text | sqlalchemy.String)
    geo_columns = {
        c["name"]: c["type"] for c in sqlalchemy.inspect(engine).get_columns("geolocation_data")
    }
    assert isinstance(geo_columns["timestamp"], sqlalchemy.DateTime)
    post = read_post(engine, 17)
    assert post["pin"]["index"] == post["geo"]["ind"] == post["user"]["ind"] == 17
    assert "T" in post["geo"]["timestamp"]  # ISO 8601
    reader = RowReader(engine)
    assert reader.read([17, 3, 17]) == [post, read_post(engine, 3), post]
    sqlite_twin = connect("sqlite://")
    seed(sqlite_twin, generated(200, seed_value=4))
    assert read_post(sqlite_twin, 17) == post, "the same rows whatever the database"
