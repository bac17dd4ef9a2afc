"""The engines the service opens."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from service.db import make_engine

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
