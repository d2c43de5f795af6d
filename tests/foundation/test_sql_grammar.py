"""Every query in include/sql/, rendered with the values the DAGs give it, parses with Trino's grammar.

The offline Athena reads SQL with sqlglot, which accepts more than Athena does (DuckDB's
``x::int``, ``QUALIFY``, ...). ``trino-query-parser`` is Trino 422's own ANTLR grammar,
Athena engine version 3's parser, so a query that passes here is syntactically one Athena
accepts. DDL is not Trino's: Athena runs ``CREATE EXTERNAL TABLE`` and friends on Hive's
grammar, so DDL templates are read with sqlglot's Hive dialect instead.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import pytest
import sqlglot
from trino_query_parser import TrinoSyntaxError, parse_statement

from pipelines.config import sql_dir
from pipelines.traffic.steps import plan, render_insert_sql

DDL = re.compile(r"\A(CREATE\s+EXTERNAL\s+TABLE|ALTER\s+TABLE|MSCK\s+REPAIR|DROP\s+TABLE)\b", re.I)
COMMENTS = re.compile(r"\A(\s*(--[^\n]*(\n|\Z)|/\*.*?\*/))*\s*", re.S)

# Ranges the DAG really gets: a scheduled hour, a multi-chunk backfill across a year end,
# and a run limited to some measuring points.
PLANS = [
    plan({}, datetime(2025, 1, 1, 5, tzinfo=UTC), datetime(2025, 1, 1, 6, tzinfo=UTC)),
    plan(
        {"start": "2024-12-28T00:00:00+00:00", "end": "2025-01-05T00:00:00+00:00", "chunk_hours": 96},
        None,
        None,
    ),
    plan(
        {
            "start": "2025-03-01T00:00:00+00:00",
            "end": "2025-03-02T00:00:00+00:00",
            "measuring_points": [1001, 1002],
        },
        None,
        None,
    ),
]


class TaskInstance:
    """What a template reads from ``ti``: the plan_chunks task's XCom."""

    def __init__(self, planned: dict[str, Any]) -> None:
        self.planned = planned

    def xcom_pull(self, task_ids: str) -> dict[str, Any]:
        assert task_ids == "plan_chunks", task_ids
        return self.planned


class Variables:
    """``var.value.get(name, default)``: the defaults, as a fresh deployment has them."""

    @staticmethod
    def get(_name: str, default: str) -> str:
        return default


def render_airflow_template(relative: str, **context: Any) -> str:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(sql_dir()), undefined=jinja2.StrictUndefined, autoescape=False
    )
    return environment.get_template(relative).render(var={"value": Variables()}, **context)


# How the DAGs render each query template; a new template must be added here.
RENDERINGS = {
    "traffic/insert_chunk.sql": lambda: [render_insert_sql(c) for p in PLANS for c in p["chunks"]],
    "traffic/rows_per_day.sql": lambda: [
        render_airflow_template("traffic/rows_per_day.sql", ti=TaskInstance(p)) for p in PLANS
    ],
}


def templates() -> list[str]:
    return sorted(str(p.relative_to(sql_dir())) for p in Path(sql_dir()).rglob("*.sql"))


def is_ddl(relative: str) -> bool:
    return bool(DDL.match(COMMENTS.sub("", (Path(sql_dir()) / relative).read_text())))


def assert_trino_parses(sql: str, where: str) -> None:
    try:
        parse_statement(sql)
    except TrinoSyntaxError as error:
        pytest.fail(f"{where} does not parse with Trino 422's grammar: {error}\n{sql}")


@pytest.mark.parametrize("relative", [t for t in templates() if not is_ddl(t)])
def test_every_query_template_rendered_with_real_values_parses_with_trinos_grammar(relative):
    assert relative in RENDERINGS, f"include/sql/{relative}: add how the DAG renders it to RENDERINGS"
    rendered = RENDERINGS[relative]()
    assert rendered
    for number, sql in enumerate(rendered):
        assert "{{" not in sql and "{%" not in sql
        assert_trino_parses(sql, f"include/sql/{relative} (rendering {number})")


@pytest.mark.parametrize("relative", [t for t in templates() if is_ddl(t)])
def test_every_ddl_template_parses_as_hive_ddl(relative):
    sql = render_airflow_template(relative)
    statement = sqlglot.parse_one(sql, read="hive")
    assert isinstance(statement, sqlglot.exp.Create | sqlglot.exp.Alter | sqlglot.exp.Drop), relative


def test_the_project_has_query_and_ddl_templates():
    assert {t for t in templates() if not is_ddl(t)} == set(RENDERINGS)
    assert any(is_ddl(t) for t in templates())


@pytest.mark.parametrize(
    "accepted_offline_only",
    [
        "SELECT x::integer FROM t",  # DuckDB / Postgres cast
        "SELECT a FROM t QUALIFY row_number() OVER (ORDER BY a) = 1",  # DuckDB, Snowflake
        "SELECT a FROM t WHERE a = 1;",  # one statement, no terminator
        "INSERT INTO t SELECT * EXCLUDE (b) FROM u",  # DuckDB star modifier
    ],
)
def test_sql_that_only_the_offline_engine_accepts_is_rejected(accepted_offline_only):
    sqlglot.parse_one(accepted_offline_only, read="duckdb")  # the offline stack would take it
    with pytest.raises(TrinoSyntaxError):
        parse_statement(accepted_offline_only)
