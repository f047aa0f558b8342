"""The denylist of staff tokens revoked before their expiry, by jti (web.revocations).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE TABLE IF NOT EXISTS staff_token_revocation ("
        " jti VARCHAR(64) NOT NULL PRIMARY KEY,"
        " revoked_by VARCHAR(100) NOT NULL,"
        " reason VARCHAR(255) NULL,"
        " expires_at DATETIME(6) NULL,"
        " revoked_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)"
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci"
    )


def downgrade() -> None:
    raise NotImplementedError("Loket's migrations go forward only")
