"""One Athena query execution and the clients a query runs with (no dependency on the server).

``athena.py`` (the API) creates and describes queries; ``athena_engine.py`` and
``athena_ddl.py`` run them with the ``EngineClients`` they are handed, so the engine never
reaches back into the API module.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from localaws.faults import FaultSettings


@dataclass(frozen=True)
class EngineClients:
    """What running a statement needs: the catalog, the bytes, and the injected faults."""

    glue: Any
    s3: Any
    faults: FaultSettings


@dataclass
class Query:
    """One query execution, as GetQueryExecution describes it."""

    query_id: str
    sql: str
    database: str | None
    catalog: str
    workgroup: str
    output_location: str
    submitted: float = field(default_factory=time.time)
    state: str = "QUEUED"
    reason: str | None = None
    started: float | None = None
    completed: float | None = None
    scanned_bytes: int = 0
    statement_type: str = "DML"
    columns: list[tuple[str, str]] = field(default_factory=list)
    update_count: int | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    connection: Any = None
    # the latency knob athena_run_seconds: nothing is published (INSERT files, results)
    # before this time (epoch seconds), so a query runs that long whatever the engine takes
    publish_not_before: float = 0.0

    def hold_until_publishable(self) -> None:
        """Wait (cancel-aware) until ``publish_not_before``; a stop meanwhile cancels the query."""
        from localaws.athena.sql import QueryCancelled

        if self.cancel.wait(max(0.0, self.publish_not_before - time.time())):
            raise QueryCancelled

    def describe(self) -> dict[str, Any]:
        status: dict[str, Any] = {"State": self.state, "SubmissionDateTime": self.submitted}
        if self.completed:
            status["CompletionDateTime"] = self.completed
        if self.reason:
            status["StateChangeReason"] = self.reason
        if self.state == "FAILED":
            internal = (self.reason or "").startswith("GENERIC_INTERNAL_ERROR")
            status["AthenaError"] = {
                "ErrorCategory": 1 if internal else 2,  # SYSTEM / USER
                "ErrorType": 401 if internal else 1000,
                "Retryable": internal,
                "ErrorMessage": self.reason,
            }
        now = time.time()
        queue_ms = int(((self.started or self.completed or now) - self.submitted) * 1000)
        engine_ms = int(((self.completed or now) - self.started) * 1000) if self.started else 0
        return {
            "QueryExecutionId": self.query_id,
            "Query": self.sql,
            "StatementType": self.statement_type,
            "ResultConfiguration": {"OutputLocation": self.output_location},
            "QueryExecutionContext": {
                key: value
                for key, value in {"Database": self.database, "Catalog": self.catalog}.items()
                if value
            },
            "Status": status,
            "Statistics": {
                "EngineExecutionTimeInMillis": engine_ms,
                "DataScannedInBytes": self.scanned_bytes,
                "TotalExecutionTimeInMillis": queue_ms + engine_ms,
                "QueryQueueTimeInMillis": queue_ms,
                "ServiceProcessingTimeInMillis": 1,
            },
            "WorkGroup": self.workgroup,
            "EngineVersion": {
                "SelectedEngineVersion": "AUTO",
                "EffectiveEngineVersion": "Athena engine version 3",
            },
        }
