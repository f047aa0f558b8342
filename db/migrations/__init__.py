"""The schema migrations (Alembic): env.py, the revisions in versions/, and their shared helpers."""
