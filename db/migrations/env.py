"""Alembic's environment for Loket: runs the revisions of versions/ on MariaDB.

The database is the one of DATABASE_URL (core.settings), or the URL that db.apply hands over in
config.attributes["database_url"]. The app's URLs name the async driver (mysql+asyncmy); the
migrations run on the synchronous PyMySQL driver of the same server. Each revision commits on its
own with its alembic_version stamp, so a revision that stops leaves the ones before it recorded.

Adding a revision: `alembic revision --rev-id 0004 -m "..."`, an upgrade() written by hand
(procedures through db.migrations.helpers.execute_sql), the same change in schema.sql or
procedures.sql; README.md beside this file says more. Migrations go forward only.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine, make_url, pool

from core.settings import load

SYNC_DRIVER = "mysql+pymysql"

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def database_url() -> str:
    """The URL to migrate, on the synchronous driver."""
    url = config.attributes.get("database_url") or load(secrets=False).database_url
    return make_url(url).set(drivername=SYNC_DRIVER).render_as_string(hide_password=False)


def run_migrations_offline() -> None:
    """Refused: the repair revisions read information_schema, so they need a live database."""
    raise SystemExit("Loket's migrations inspect the live database; --sql (offline) mode is not supported")


def run_migrations_online() -> None:
    engine = create_engine(database_url(), poolclass=pool.NullPool, connect_args={"charset": "utf8mb4", "init_command": "SET time_zone = '+00:00'"})
    with engine.connect() as connection:
        context.configure(connection=connection, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
