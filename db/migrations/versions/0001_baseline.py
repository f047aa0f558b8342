"""The baseline: the schema and stored procedures as they stood when migrations began.

Revision ID: 0001
Revises:

It runs the frozen copies in db/migrations/baseline/, which never change. Every table is
CREATE TABLE IF NOT EXISTS and every procedure is dropped and created, so it also brings in a
database made by an older schema.sql without migrations: its tables and rows stay, the tables it
lacks are created. Columns and keys that such a database lacks inside existing tables are
revision 0002's work.
"""

from __future__ import annotations

import pathlib

from db.migrations.helpers import execute_files

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BASELINE = pathlib.Path(__file__).resolve().parent.parent / "baseline"


def upgrade() -> None:
    execute_files(BASELINE / "schema.sql", BASELINE / "procedures.sql")


def downgrade() -> None:
    raise NotImplementedError("Loket's migrations go forward only")
