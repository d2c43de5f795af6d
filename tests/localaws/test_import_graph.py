"""localaws's modules import one way: no cycles, the server core knows no extension.

Read from the source with ``ast``, every import counts: module level, inside functions
(a lazy import is still a dependency) and under ``TYPE_CHECKING`` (a type-only cycle
still ties two modules together).
"""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

import localaws

PACKAGE = Path(localaws.__file__).parent
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py"))
# the core: routing, control API, faults, and IAM enforcement (which wraps every request,
# whatever service or extension answers it, KMS key checks included), the S3 location parser
# enforcement shares, and what completes moto's own services (change sets' outputs, SNS e-mail)
CORE = {
    "server", "errors", "faults", "iam_enforcement", "iam_policy", "iam_requests", "kms", "s3uri",
    "cloudformation", "sns_email",
}  # fmt: skip


def imports_of(module: str) -> set[str]:
    """The localaws modules ``module`` imports (``__init__`` for names from the package)."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] != "localaws":
                continue
            if len(parts) == 1:
                found.add("__init__")
            elif parts[1] in MODULES:
                found.add(parts[1])
            else:
                found.add("__init__")  # a name the package itself exports
    found.discard(module)
    return found


GRAPH = {module: imports_of(module) for module in MODULES}


def test_the_import_graph_has_no_cycle():
    try:
        tuple(TopologicalSorter(GRAPH).static_order())
    except CycleError as error:
        pytest.fail(f"import cycle among localaws modules: {' -> '.join(error.args[1])}")


def test_the_server_core_imports_no_extension():
    for module in CORE:
        assert GRAPH[module] <= CORE, f"{module} imports {sorted(GRAPH[module] - CORE)}"


def test_only_the_package_and_the_command_line_assemble_the_stack():
    importers = {module for module, targets in GRAPH.items() if "__init__" in targets}
    assert importers <= {"__main__"}, f"{sorted(importers)} import the assembled package"


def test_the_athena_engine_never_reaches_back_into_the_athena_api():
    for engine in (
        "athena_engine",
        "athena_ddl",
        "athena_catalog",
        "athena_sql",
        "athena_types",
        "athena_query",
    ):
        assert "athena" not in GRAPH[engine], f"{engine} imports athena (the API module)"


def test_the_crawl_and_its_inference_know_nothing_of_the_crawler_api():
    assert "glue_crawler" not in GRAPH["glue_crawl"] | GRAPH["glue_schema"]
    assert GRAPH["glue_schema"] <= {"hive_formats", "s3io"}  # pure: no server, no clients


def test_the_graph_reader_sees_every_kind_of_import():
    # the checks above are only as good as this reader: lazy and type-only imports count
    assert "athena_engine" in GRAPH["athena"]
    assert {"athena", "dynamodb", "glue_crawler", "server"} <= GRAPH["__init__"]
    assert "athena_query" in GRAPH["athena_engine"]  # imported under TYPE_CHECKING only
