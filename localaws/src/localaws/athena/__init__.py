"""Athena: SQL on DuckDB (sqlglot), the Glue catalog's tables, Trino's type rules."""
