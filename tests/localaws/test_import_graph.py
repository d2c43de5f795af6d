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
# dotted names under the package: "server", "athena.engine", "iam.enforcement"; a
# subpackage's own __init__ is named by the subpackage ("athena")
MODULES = sorted(
    ".".join(p.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__")
    for p in PACKAGE.rglob("*.py")
)


def source_of(module: str) -> Path:
    path = PACKAGE.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
# the core: routing, control API, faults, and IAM enforcement (which wraps every request,
# whatever service or extension answers it, KMS key checks included), the S3 location parser
# enforcement shares, and what completes moto's own services (change sets' outputs, SNS e-mail, S3 delete-marker events)
CORE = {
    "server", "errors", "faults", "s3uri",
    "iam", "iam.enforcement", "iam.policy", "iam.requests", "kms", "kms.keys",
    "cloudformation", "cloudformation.change_sets", "sns", "sns.email", "s3", "s3.events",
}  # fmt: skip


def imports_of(module: str) -> set[str]:
    """The localaws modules ``module`` imports (``__init__`` for names from the package)."""
    tree = ast.parse(source_of(module).read_text())
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
            # the longest localaws module the dotted name starts with; what is left is a name
            # imported from it ("localaws.athena.engine.execute" -> "athena.engine")
            for length in range(len(parts) - 1, 0, -1):
                candidate = ".".join(parts[1 : length + 1])
                if candidate in MODULES:
                    found.add(candidate)
                    break
            else:
                found.add("__init__")  # the package itself, or a name it exports
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
        "athena.engine",
        "athena.ddl",
        "athena.catalog",
        "athena.sql",
        "athena.trino_types",
        "athena.query",
    ):
        assert "athena.service" not in GRAPH[engine], f"{engine} imports athena.service (the API module)"


def test_the_crawl_and_its_inference_know_nothing_of_the_crawler_api():
    assert "glue.crawler" not in GRAPH["glue.crawl"] | GRAPH["glue.schema"]
    assert GRAPH["glue.schema"] <= {"hive_formats", "s3io"}  # pure: no server, no clients


def test_the_graph_reader_sees_every_kind_of_import():
    # the checks above are only as good as this reader: lazy and type-only imports count
    assert "athena.engine" in GRAPH["athena.service"]
    assert {"athena.service", "dynamodb.service", "glue.crawler", "server"} <= GRAPH["__init__"]
    assert "athena.query" in GRAPH["athena.engine"]  # imported under TYPE_CHECKING only


def test_each_service_lives_in_its_own_subpackage():
    # a reader finds a service in one folder: no flat athena_*/glue_*/iam_* modules left
    services = {"athena", "glue", "iam", "kms", "cloudformation", "sns", "dynamodb"}
    assert services <= set(MODULES)
    flat = [m for m in MODULES if "." not in m and any(m.startswith(f"{s}_") for s in services)]
    assert not flat, f"flat service modules: {flat}"
