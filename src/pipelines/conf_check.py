"""Refuse trigger ``conf`` keys a DAG does not declare as a param.

Airflow merges any ``conf`` into the run's params and validates each declared param's
schema, but a key that matches no param is accepted silently: ``{"regionid": 10000030}``
runs the default region and reports success. One rule, applied in two places:

* at trigger time, by the api-server middleware of ``plugins/conf_guard_plugin.py``: the
  REST API (and the UI's trigger form, which uses it) answers 400 naming the key;
* at run time, as every task's ``pre_execute`` hook (``dag_defaults.DEFAULT_ARGS``), for
  runs created without the REST API (``airflow dags trigger``, ``dag.test``, another DAG):
  the first task fails without retries, naming the key, before it reads or writes anything.

Pure: no Airflow import, so the middleware and the tests use it as is.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any


def undeclared_conf_keys(declared: Iterable[str], conf: Mapping[str, Any] | None) -> list[str]:
    known = set(declared)
    return sorted(key for key in (conf or {}) if key not in known)


def undeclared_conf_message(dag_id: str, declared: Iterable[str], conf: Mapping[str, Any] | None) -> str | None:
    """The refusal naming each unknown key (with the closest declared name), or None if all are declared."""
    declared = sorted(declared)
    unknown = undeclared_conf_keys(declared, conf)
    if not unknown:
        return None
    parts = []
    for key in unknown:
        close = difflib.get_close_matches(key, declared, n=1, cutoff=0.6)
        parts.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return (
        f"DAG {dag_id} does not declare conf key(s) {', '.join(parts)}; "
        f"its params are: {', '.join(declared) or 'none'}"
    )
