"""
### department_directory: a CSV dropped in S3 becomes a nested DynamoDB table

Operators' page (reads, writes, params with examples, failures, re-runs): `docs/pipelines/department_directory.md`.

Event-driven: S3 `ObjectCreated` notifications for `directory/incoming/*.csv` go to SQS
queue `directory-events`; an `AssetWatcher` on that queue (run by the triggerer)
starts a run that knows the object key. Manual runs take param `s3_key`; without it, the
key in Variable `directory_default_s3_key` (when set; `make airflow` sets it to the sample CSV).

`resolve_source` (the newest of the keys the run was given)
-> `nest_and_validate` (one item per department; the whole file validated and every item
converted to DynamoDB's wire form before any write, so a value DynamoDB cannot store
fails here, naming file, row and column)
-> `load` (the overwrites and deletes planned first and held to the shared removal guard:
a file that drops more than `max_removal_share` (25%) of the stored employees, and more
than 10, fails the run before any write unless `allow_large_removal` (then logged, and
named in the task's result); then batched writes, then departments absent from the file
deleted). Runs the watcher starts take the defaults: load a refused file that is really
right with a manual run, conf `{"s3_key": "<its key>", "allow_large_removal": true}`.

Types are decided per column: numeric only when every non-empty cell is a plain number
(no sign, no leading zero), boolean only when every one is true/false, else text exactly
as written (`+15551234567`, `02134`). Short rows and duplicate header names are refused.
A file gone (S3 404) skips the run; any other S3 error (403, 5xx) fails it and alerts.

`max_active_runs=1` keeps loads from interleaving, and a file older than one already in
`directory/incoming/` is never applied over it: the newest wins.
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger
from airflow.sdk import Asset, AssetWatcher, Param, dag, task

from pipelines.config import DIRECTORY_AWS_CONN_ID as AWS_CONN_ID
from pipelines.config import directory_events_queue_url
from pipelines.dag_defaults import DEFAULT_ARGS
from pipelines.errors import fails_fast

# The queue URL is static configuration (account and region of the deployment), read from
# the environment (stack output DirectoryEventsQueueUrl): no AWS call at parse time. Unset,
# the DAG fails to import, naming DIRECTORY_EVENTS_QUEUE_URL, except on the offline stack.
QUEUE_URL = directory_events_queue_url()

directory_events = Asset(
    name="directory_events",
    uri=QUEUE_URL.replace("https://", "sqs://", 1),
    watchers=[
        AssetWatcher(
            name="directory_events_watcher",
            trigger=MessageQueueTrigger(
                scheme="sqs", sqs_queue=QUEUE_URL, aws_conn_id=AWS_CONN_ID, max_messages=10, waiter_delay=5
            ),
        )
    ],
)


@dag(
    dag_id="department_directory",
    schedule=[directory_events],
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["directory", "dynamodb", "event-driven"],
    doc_md=__doc__,
    params={
        "s3_key": Param(
            None,
            type=["null", "string"],
            pattern=r"^directory/incoming/.+\.csv$",
            description="Manual run: the key of a CSV under directory/incoming/ in the data lake bucket",
        ),
        # Runs the SQS watcher starts take these defaults; a refused file is loaded by a manual
        # run with {"s3_key": <its key>, "allow_large_removal": true}.
        "allow_large_removal": Param(
            False,
            type="boolean",
            description="Load the file even if it drops more than max_removal_share of the stored "
            "employees (the directory really shrank); logged in the run",
        ),
        "max_removal_share": Param(
            0.25,
            type="number",
            minimum=0,
            maximum=1,
            description="Largest share of the stored employees one file may drop (10 always may)",
        ),
    },
)
def department_directory():
    @task
    def resolve_source(params=None, triggering_asset_events=None) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        from pipelines.config import data_lake_bucket, variable
        from pipelines.directory.domain import keys_from_s3_events, messages_from_asset_events
        from pipelines.directory.steps import newest_object

        keys = [params["s3_key"]] if params.get("s3_key") else []
        for events in (triggering_asset_events or {}).values():
            keys += [key for key, _time in keys_from_s3_events(messages_from_asset_events(events))]
        if not keys and (default_key := variable("directory_default_s3_key", "")):
            keys = [default_key]  # a manual run without s3_key: the operator's configured file
        source = newest_object(data_lake_bucket(), keys)
        if source is None:
            raise AirflowSkipException(f"no directory CSV to load (candidates: {keys or 'none'})")
        return source

    @task
    @fails_fast  # a bad file stays bad: no retries
    def nest_and_validate(source: dict, run_id=None) -> dict:
        import re

        from airflow.sdk.exceptions import AirflowSkipException

        from pipelines.directory.steps import SourceGone, nest_to_staging

        prefix = f"s3://{source['bucket']}/directory/runs/{re.sub(r'[^A-Za-z0-9_.-]', '_', run_id)}/"
        try:
            return nest_to_staging(source, prefix)
        except SourceGone as gone:
            raise AirflowSkipException(str(gone)) from gone

    @task
    @fails_fast  # a refused removal: the same file is refused again
    def load(source: dict, staged: dict, params=None) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        from pipelines.directory.steps import SupersededError, load

        try:
            return load(
                source, staged, float(params["max_removal_share"]), bool(params["allow_large_removal"])
            )
        except SupersededError as superseded:
            raise AirflowSkipException(f"not applied: {superseded}") from superseded

    source = resolve_source()
    load(source, nest_and_validate(source))


department_directory()
