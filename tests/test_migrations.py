"""The Alembic migrations create exactly the tables the models describe."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from models import Base
from models.db import get_engine


def test_migrations_match_the_models(settings):
    with get_engine(settings.DATABASE_URL).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
