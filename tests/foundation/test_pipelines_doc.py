"""docs/PIPELINES.md (the dated copy of the spec the code refers to) says what the code does:
the S3 places, connections, Variables and resources it names exist in the code and infra."""

from __future__ import annotations

import re

from tests.conftest import REPO

DOC = (REPO / "docs" / "PIPELINES.md").read_text()
CODE = "\n".join(path.read_text() for path in (REPO / "src" / "pipelines").rglob("*.py"))
INFRA = (REPO / "infra" / "pipelines.yaml").read_text()


def _ours_sections() -> str:
    """The **Ours** / **Resources** / **Params** paragraphs: what ours does (the originals' text aside)."""
    return (
        "\n".join(re.findall(r"\*\*(?:Ours|Resources|Params)\*\*:.*?(?=\n\n)", DOC, flags=re.S))
        + DOC.split("## 1.", 1)[0]
    )


def test_every_s3_prefix_the_doc_gives_ours_is_one_the_code_uses():
    prefixes = re.findall(r"s3://<(?:data_lake_)?bucket>/([a-z_-]+/[a-z_-]+)/", _ours_sections())
    assert prefixes
    missing = [prefix for prefix in prefixes if f"{prefix}/" not in CODE]
    assert not missing, f"docs/PIPELINES.md names S3 places no code uses: {missing}"


def test_every_connection_and_variable_the_doc_names_is_the_codes():
    head = DOC.split("## 1.", 1)[0]
    for connection in re.findall(r"`(aws_[a-z]+)`", head):
        assert f'"{connection}"' in CODE, connection
    for variable in re.findall(r"Variable `([a-z_]+)`", DOC):
        assert f'"{variable}"' in CODE, variable
    if "All AWS resource names are Airflow Variables" in DOC:  # then each table name would be one
        assert '"covid_stats"' not in (REPO / "src" / "pipelines" / "tables.py").read_text()


def test_no_crawler_is_named_that_infra_does_not_define():
    for crawler in re.findall(r"crawler\s+`([a-z_]+)`", _ours_sections()):
        assert crawler in INFRA, crawler


def test_the_http_provider_is_not_a_direct_requirement_since_no_code_uses_it():
    """Dropped from requirements.txt (issue 22.9): nothing imports airflow.providers.http; the lock
    still holds it only because the Amazon provider requires it."""
    code = CODE + "\n".join(p.read_text() for p in (REPO / "dags").glob("*.py"))
    assert "airflow.providers.http" not in code
    assert "apache-airflow-providers-http" not in (REPO / "requirements.txt").read_text()
    lock = (REPO / "requirements.lock").read_text()
    entry = lock[lock.index("apache-airflow-providers-http==") :].split("\n\n")[0]
    assert "# via apache-airflow-providers-amazon" in entry
