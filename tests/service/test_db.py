"""The engines the service opens."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from service.db import PG_CONNECT_TIMEOUT_SECONDS, make_engine

pytestmark = pytest.mark.integration


def test_a_database_error_names_the_statement_but_not_its_values(database_url: str) -> None:
    engine = make_engine(database_url)
    personal = "ann.reader@example.com"
    try:
        with pytest.raises(DBAPIError) as raised, engine.connect() as connection:
            connection.execute(
                text("SELECT name FROM no_such_table WHERE email = :email"), {"email": personal}
            )
    finally:
        engine.dispose()
    assert "no_such_table" in str(raised.value) and personal not in str(raised.value)


@pytest.mark.parametrize(
    ("url", "timeout"),
    [("postgresql://db.invalid/x", PG_CONNECT_TIMEOUT_SECONDS), ("postgres://h/x?connect_timeout=30", "30")],
)
def test_connecting_to_postgresql_gives_up_after_a_while(
    url: str, timeout: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A server that drops packets would otherwise hold a request until libpq gave up: never.
    engine = make_engine(url)
    asked: dict[str, object] = {}

    def connect(*_args: object, **kwargs: object) -> None:
        asked.update(kwargs)
        raise engine.dialect.loaded_dbapi.OperationalError("no answer")

    monkeypatch.setattr(engine.dialect.loaded_dbapi, "connect", connect)
    with pytest.raises(DBAPIError):
        engine.connect()
    assert asked["connect_timeout"] == timeout
    engine.dispose()
