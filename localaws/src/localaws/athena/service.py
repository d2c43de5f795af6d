"""Athena whose queries really run: Athena SQL -> sqlglot -> DuckDB, tables from the Glue catalog.

moto's Athena answers SUCCEEDED at once without running anything. Here every Athena
action is ours (query executions, results, workgroups, catalog metadata) and a query:

* is QUEUED, then RUNNING in a worker thread, then SUCCEEDED, FAILED (with a
  StateChangeReason in Athena's style, e.g. ``SYNTAX_ERROR: ...``) or CANCELLED;
* resolves each ``db.table`` from the Glue catalog (location, format, columns, partition
  keys, partitions) and reads only the partitions that the WHERE conjuncts on partition
  columns can match (evaluated in DuckDB over the partition values), so
  ``Statistics.DataScannedInBytes`` is the stored size of the objects actually read
  (``localaws/athena/catalog.py``);
* SELECT: writes ``<QueryExecutionId>.csv`` to the output location; GetQueryResults pages
  through that file, header row first, values as text;
* INSERT INTO: writes Parquet files under the target table's location in Hive folders
  and registers the new partitions. More than 100 partitions fail with
  HIVE_TOO_MANY_OPEN_PARTITIONS and write nothing; files are only published once the
  whole result is ready, so a failed or cancelled INSERT leaves nothing behind
  (unless the fault ``athena_insert_fail_after_files`` fails it half-written)
  (``localaws/athena/engine.py``);
* DDL: CREATE EXTERNAL TABLE, DROP TABLE, MSCK REPAIR TABLE, ALTER TABLE ADD/DROP
  PARTITION act on the Glue catalog (``localaws/athena/ddl.py``).

DuckDB runs with TimeZone UTC and only its built-in extensions (no httpfs: S3 bytes are
fetched through the stack's own endpoint and handed to DuckDB as local files).
``LOCALAWS_ATHENA_MIN_SECONDS`` (default 0) keeps every query RUNNING at least that long,
so deferral and cancellation can be watched as with a real, slower Athena; the faults
``athena_queue_seconds`` / ``athena_run_seconds`` (``localaws/faults.py``) set a fixed
queue and run time per query at run time, for latency benchmarks.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import duckdb

from localaws.athena.engine import execute
from localaws.athena.query import EngineClients, Query
from localaws.athena.sql import QueryCancelled, QueryFailed
from localaws.errors import AwsError
from localaws.s3io import split_s3_uri
from localaws.server import Extension, JsonHandler

log = logging.getLogger("localaws.athena")

RESULTS_PAGE_MAX = 1000
CACHED_RESULTS = 4
CANCELLED_REASON = "Query was cancelled by the user"
CATALOG = "AwsDataCatalog"


def _new_workgroup(name: str, configuration: dict[str, Any], description: str = "") -> dict[str, Any]:
    return {
        "Name": name,
        "State": "ENABLED",
        "Configuration": {"ResultConfiguration": {}, **configuration},
        "Description": description,
        "CreationTime": time.time(),
    }


class AthenaExtension(Extension):
    """Every ``AmazonAthena.*`` action: query executions, results, workgroups, catalog metadata."""

    def __init__(self, stack: Any) -> None:
        super().__init__(stack)
        self.queries: dict[str, Query] = {}
        self.workgroups: dict[str, dict[str, Any]] = {"primary": _new_workgroup("primary", {})}
        self.results: OrderedDict[str, list[tuple[str | None, ...]]] = OrderedDict()
        self.lock = threading.RLock()
        # Athena runs many queries at once (a per-account quota, tens by default): enough
        # workers that a client's own concurrency, not the stack, bounds how many run
        self.pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="athena")

    def handlers(self) -> dict[str, JsonHandler]:
        return {"AmazonAthena.*": self.dispatch}

    def reset(self) -> None:
        with self.lock:
            for query in self.queries.values():
                self._cancel(query)
            self.queries.clear()
            self.results.clear()
            self.workgroups = {"primary": _new_workgroup("primary", {})}

    def shutdown(self) -> None:
        with self.lock:
            for query in self.queries.values():
                self._cancel(query)
        self.pool.shutdown(wait=False, cancel_futures=True)

    def dispatch(self, request: dict[str, Any]) -> dict[str, Any]:
        action = request["__target__"].split(".", 1)[1]
        handler: Callable[[dict[str, Any]], dict[str, Any]] | None = getattr(
            self, "_" + re.sub(r"(?<!^)(?=[A-Z])", "_", action).lower(), None
        )
        if handler is None:
            raise AwsError("InvalidRequestException", f"{action} is not supported by the offline Athena")
        return handler(request)

    # -- workgroups -----------------------------------------------------------------------

    def _workgroup(self, name: str) -> dict[str, Any]:
        workgroup = self.workgroups.get(name)
        if workgroup is None:
            raise AwsError("InvalidRequestException", f"WorkGroup {name} is not found.")
        return workgroup

    def _create_work_group(self, request: dict[str, Any]) -> dict[str, Any]:
        name = request["Name"]
        with self.lock:
            if name in self.workgroups:
                raise AwsError("InvalidRequestException", f"WorkGroup {name} is already created")
            self.workgroups[name] = _new_workgroup(
                name, request.get("Configuration") or {}, request.get("Description", "")
            )
        return {}

    def _get_work_group(self, request: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            return {"WorkGroup": self._workgroup(request["WorkGroup"])}

    def _list_work_groups(self, request: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            summaries = [
                {key: w[key] for key in ("Name", "State", "Description", "CreationTime")}
                for w in self.workgroups.values()
            ]
        return {"WorkGroups": summaries}

    def _update_work_group(self, request: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            workgroup = self._workgroup(request["WorkGroup"])
            updates = (request.get("ConfigurationUpdates") or {}).get("ResultConfigurationUpdates") or {}
            result_configuration = workgroup["Configuration"].setdefault("ResultConfiguration", {})
            if "OutputLocation" in updates:
                result_configuration["OutputLocation"] = updates["OutputLocation"]
            if updates.get("RemoveOutputLocation"):
                result_configuration.pop("OutputLocation", None)
            if "State" in request:
                workgroup["State"] = request["State"]
            if "Description" in request:
                workgroup["Description"] = request["Description"]
        return {}

    def _delete_work_group(self, request: dict[str, Any]) -> dict[str, Any]:
        name = request["WorkGroup"]
        with self.lock:
            if name == "primary":
                raise AwsError("InvalidRequestException", "Cannot delete primary workgroup")
            self._workgroup(name)
            del self.workgroups[name]
        return {}

    # -- query executions -----------------------------------------------------------------

    def _start_query_execution(self, request: dict[str, Any]) -> dict[str, Any]:
        sql = request.get("QueryString", "")
        if not sql.strip():
            raise AwsError("InvalidRequestException", "QueryString must not be empty")
        workgroup_name = request.get("WorkGroup") or "primary"
        with self.lock:
            workgroup = self._workgroup(workgroup_name)
        if workgroup["State"] != "ENABLED":
            raise AwsError("InvalidRequestException", f"WorkGroup {workgroup_name} is disabled.")
        configuration = workgroup["Configuration"]
        workgroup_output = (configuration.get("ResultConfiguration") or {}).get("OutputLocation")
        request_output = (request.get("ResultConfiguration") or {}).get("OutputLocation")
        # a workgroup that enforces its configuration wins over the request, as in Athena
        if configuration.get("EnforceWorkGroupConfiguration") and workgroup_output:
            output = workgroup_output
        else:
            output = request_output or workgroup_output
        if not output:
            raise AwsError(
                "InvalidRequestException",
                "No output location provided. An output location is required either through "
                "the Workgroup result configuration setting or as an API input.",
            )
        split_s3_uri(output)
        context = request.get("QueryExecutionContext") or {}
        query_id = str(uuid.uuid4())
        query = Query(
            query_id=query_id,
            sql=sql,
            database=context.get("Database"),
            catalog=context.get("Catalog", CATALOG),
            workgroup=workgroup_name,
            output_location=output.rstrip("/") + f"/{query_id}.csv",
        )
        with self.lock:
            self.queries[query_id] = query
        self.pool.submit(self._run, query)
        return {"QueryExecutionId": query_id}

    def _query(self, query_id: str) -> Query:
        query = self.queries.get(query_id)
        if query is None:
            raise AwsError("InvalidRequestException", f"QueryExecution {query_id} was not found")
        return query

    def _get_query_execution(self, request: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            return {"QueryExecution": self._query(request["QueryExecutionId"]).describe()}

    def _batch_get_query_execution(self, request: dict[str, Any]) -> dict[str, Any]:
        found, missing = [], []
        with self.lock:
            for query_id in request.get("QueryExecutionIds", []):
                if query_id in self.queries:
                    found.append(self.queries[query_id].describe())
                else:
                    missing.append(
                        {
                            "QueryExecutionId": query_id,
                            "ErrorCode": "INVALID_INPUT",
                            "ErrorMessage": f"QueryExecution {query_id} was not found",
                        }
                    )
        return {"QueryExecutions": found, "UnprocessedQueryExecutionIds": missing}

    def _list_query_executions(self, request: dict[str, Any]) -> dict[str, Any]:
        workgroup = request.get("WorkGroup") or "primary"
        with self.lock:
            self._workgroup(workgroup)
            newest_first = sorted(self.queries.values(), key=lambda q: q.submitted, reverse=True)
            ids = [q.query_id for q in newest_first if q.workgroup == workgroup]
        return _page(request, ids, "QueryExecutionIds", default_size=50)

    def _cancel(self, query: Query) -> None:
        query.cancel.set()
        if query.connection is not None:
            query.connection.interrupt()

    def _stop_query_execution(self, request: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            query = self._query(request["QueryExecutionId"])
            if query.state == "QUEUED":
                query.cancel.set()
                query.state, query.completed, query.reason = "CANCELLED", time.time(), CANCELLED_REASON
            elif query.state == "RUNNING":
                self._cancel(query)
        return {}

    def _get_query_results(self, request: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            query = self._query(request["QueryExecutionId"])
        if query.state in ("QUEUED", "RUNNING"):
            raise AwsError(
                "InvalidRequestException", f"Query has not yet finished. Current state: {query.state}"
            )
        if query.state != "SUCCEEDED":
            raise AwsError(
                "InvalidRequestException",
                f"Query did not finish successfully. Final query state: {query.state}\n{query.reason or ''}",
            )
        size = int(request.get("MaxResults") or RESULTS_PAGE_MAX)
        if not 0 < size <= RESULTS_PAGE_MAX:
            raise AwsError("InvalidRequestException", f"MaxResults must be between 1 and {RESULTS_PAGE_MAX}")
        rows = self._result_rows(query) if query.columns else []
        header = [[name for name, _type in query.columns]] if query.columns else []
        page = _page(request, header + rows, "Rows", default_size=size)
        response: dict[str, Any] = {
            "ResultSet": {
                "Rows": [
                    {"Data": [{"VarCharValue": v} if v is not None else {} for v in row]}
                    for row in page["Rows"]
                ],
                "ResultSetMetadata": {"ColumnInfo": [_column_info(n, t) for n, t in query.columns]},
            }
        }
        if "NextToken" in page:
            response["NextToken"] = page["NextToken"]
        if query.update_count is not None:
            response["UpdateCount"] = query.update_count
        return response

    def _result_rows(self, query: Query) -> list[tuple[str | None, ...]]:
        """The rows of the query's result file in S3 (parsed once, a few results kept)."""
        with self.lock:
            if query.query_id in self.results:
                self.results.move_to_end(query.query_id)
                return self.results[query.query_id]
        bucket, key = split_s3_uri(query.output_location)
        try:
            body = self.s3().get_object(Bucket=bucket, Key=key)["Body"].read()
        except self.s3().exceptions.NoSuchKey as error:
            raise AwsError(
                "InvalidRequestException", f"The result file {query.output_location} is gone"
            ) from error
        rows = parse_results_csv(body, len(query.columns))
        with self.lock:
            self.results[query.query_id] = rows
            while len(self.results) > CACHED_RESULTS:
                self.results.popitem(last=False)
        return rows

    # -- catalog metadata (read from the Glue catalog) ------------------------------------

    def _list_data_catalogs(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"DataCatalogsSummary": [{"CatalogName": CATALOG, "Type": "GLUE"}]}

    def _list_databases(self, request: dict[str, Any]) -> dict[str, Any]:
        glue = self.glue()
        databases = [
            {
                "Name": d["Name"],
                "Description": d.get("Description", ""),
                "Parameters": d.get("Parameters", {}),
            }
            for page in glue.get_paginator("get_databases").paginate()
            for d in page["DatabaseList"]
        ]
        return _page(request, databases, "DatabaseList", default_size=50)

    def _get_database(self, request: dict[str, Any]) -> dict[str, Any]:
        glue = self.glue()
        try:
            database = glue.get_database(Name=request["DatabaseName"])["Database"]
        except glue.exceptions.EntityNotFoundException as error:
            raise AwsError("MetadataException", f"Database {request['DatabaseName']} not found.") from error
        return {"Database": {"Name": database["Name"], "Description": database.get("Description", "")}}

    def _get_table_metadata(self, request: dict[str, Any]) -> dict[str, Any]:
        glue = self.glue()
        try:
            table = glue.get_table(DatabaseName=request["DatabaseName"], Name=request["TableName"])["Table"]
        except glue.exceptions.EntityNotFoundException as error:
            raise AwsError(
                "MetadataException", f"Table {request['TableName']} not found in {request['DatabaseName']}."
            ) from error
        return {"TableMetadata": _table_metadata(table)}

    def _list_table_metadata(self, request: dict[str, Any]) -> dict[str, Any]:
        glue = self.glue()
        try:
            tables = [
                _table_metadata(t)
                for page in glue.get_paginator("get_tables").paginate(DatabaseName=request["DatabaseName"])
                for t in page["TableList"]
            ]
        except glue.exceptions.EntityNotFoundException as error:
            raise AwsError("MetadataException", f"Database {request['DatabaseName']} not found.") from error
        if request.get("Expression"):
            pattern = re.compile(request["Expression"].replace("*", ".*"), re.I)
            tables = [t for t in tables if pattern.fullmatch(t["Name"])]
        return _page(request, tables, "TableMetadataList", default_size=50)

    # -- execution ------------------------------------------------------------------------

    def _run(self, query: Query) -> None:
        faults = self.stack.faults
        # the latency knob: a fixed time QUEUED, then at least a fixed time RUNNING (a stop
        # during either ends the query CANCELLED at once)
        if query.cancel.wait(faults.athena_queue_seconds):
            return  # stopped while QUEUED: _stop_query_execution has set CANCELLED
        with self.lock:
            if query.state != "QUEUED":
                return
            query.state, query.started = "RUNNING", time.time()
            # run time: the engine's work overlaps it (a fixed time per query, as on Athena,
            # not the knob plus however long DuckDB takes); publication waits for its end
            query.publish_not_before = query.started + faults.athena_run_seconds
        state, reason = "SUCCEEDED", None
        try:
            if query.cancel.wait(float(os.environ.get("LOCALAWS_ATHENA_MIN_SECONDS", "0"))):
                raise QueryCancelled
            execute(EngineClients(glue=self.glue(), s3=self.s3(), faults=self.stack.faults), query)
            query.hold_until_publishable()  # SELECT and DDL: the rest of the run time
            if query.cancel.is_set():
                raise QueryCancelled
        except (QueryCancelled, duckdb.InterruptException):
            state, reason = "CANCELLED", CANCELLED_REASON
        except QueryFailed as failure:
            state, reason = "FAILED", str(failure)
        except Exception as failure:  # anything unexpected fails the query, not the server
            log.exception("query %s failed", query.query_id)
            state, reason = "FAILED", f"GENERIC_INTERNAL_ERROR: {failure}"
        with self.lock:
            query.connection = None
            if query.cancel.is_set() and state == "SUCCEEDED":
                state, reason = "CANCELLED", CANCELLED_REASON
            query.state, query.reason, query.completed = state, reason, time.time()
        log.info("query %s %s %s", query.query_id, state, reason or "")

    # -- the clients the engine and the DDL are given ---------------------------------------

    def glue(self) -> Any:
        return self.stack.internal_client("glue")

    def s3(self) -> Any:
        return self.stack.internal_client("s3")


def _page(request: dict[str, Any], items: list[Any], key: str, default_size: int) -> dict[str, Any]:
    """One page of ``items`` by the request's NextToken/MaxResults (tokens are offsets)."""
    token = request.get("NextToken") or "0"
    if not token.isdigit():
        raise AwsError("InvalidRequestException", "Invalid NextToken")
    start, size = int(token), int(request.get("MaxResults") or default_size)
    page: dict[str, Any] = {key: items[start : start + size]}
    if start + size < len(items):
        page["NextToken"] = str(start + size)
    return page


def _column_info(name: str, kind: str) -> dict[str, Any]:
    return {
        "CatalogName": "hive",
        "SchemaName": "",
        "TableName": "",
        "Name": name,
        "Label": name,
        "Type": kind,
        "Precision": 0,
        "Scale": 0,
        "Nullable": "UNKNOWN",
        "CaseSensitive": kind == "varchar",
    }


def _table_metadata(table: dict[str, Any]) -> dict[str, Any]:
    def columns(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"Name": c["Name"], "Type": c["Type"], **({"Comment": c["Comment"]} if "Comment" in c else {})}
                for c in items]  # fmt: skip

    return {
        "Name": table["Name"],
        "CreateTime": table.get("CreateTime"),
        "TableType": table.get("TableType", "EXTERNAL_TABLE"),
        "Columns": columns(table.get("StorageDescriptor", {}).get("Columns", [])),
        "PartitionKeys": columns(table.get("PartitionKeys", [])),
        "Parameters": {
            **table.get("Parameters", {}),
            "location": table.get("StorageDescriptor", {}).get("Location", ""),
        },
    }


def parse_results_csv(body: bytes, width: int) -> list[tuple[str | None, ...]]:
    """The data rows of an Athena result file: quoted values, NULL as an empty unquoted field."""
    _header, _, data = body.partition(b"\n")
    if not data:  # a query that matched nothing: DuckDB cannot sniff a file of one line
        return []
    with tempfile.TemporaryDirectory(prefix="localaws-athena-results-") as folder:
        path = Path(folder) / "result.csv"
        path.write_bytes(body)
        spec = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(width)) + "}"
        with duckdb.connect() as connection:
            return connection.execute(
                f"SELECT * FROM read_csv('{path}', header = false, skip = 1, delim = ',', quote = '\"', "
                f"escape = '\"', columns = {spec}, allow_quoted_nulls = false, nullstr = '')"
            ).fetchall()
