"""What a failed statement tells: never the personal data it carried."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError


def test_a_failed_statement_keeps_its_bound_values_out_of_the_error_and_the_logs(
        engine: Engine) -> None:
    with pytest.raises(IntegrityError) as failed, engine.begin() as connection:
        for _ in range(2):  # the second breaks the unique name
            connection.execute(text(
                "INSERT INTO manager (name, kind, email) VALUES (:name, 'person', :email)"),
                {"name": "Jan Jansen, Domplein 29", "email": "jan@example.org"})

    # (PostgreSQL's own detail of a unique violation still names the duplicate key.)
    assert "jan@example.org" not in str(failed.value)
    assert "parameters hidden" in str(failed.value)
