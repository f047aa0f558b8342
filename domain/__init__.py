"""The domain layer: every money move and every state transition, each written once.

Functions here take an open connection inside a transaction and never commit: the caller (a web
handler or a job) owns the unit of work, so a change and its ledger entry and its outbox row
commit together or not at all.
"""
