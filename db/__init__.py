"""The database: the schema mirror, the engine, and one module of queries per table."""
