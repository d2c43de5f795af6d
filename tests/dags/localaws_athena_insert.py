"""Test-only: the provider's AthenaOperator runs real SQL on the offline stack, deferrable and not.

Creates the Parquet table ``traffic.athena_check_copy`` (if missing), then copies two
hours of the JSON table named by the ``source_table`` param into it with INSERT INTO:
hour 00 through a deferrable operator (the trigger polls), hour 01 through a blocking
one (the worker polls). A ``source_table`` that does not exist makes both queries FAIL.
"""

from __future__ import annotations

from airflow.providers.amazon.aws.operators.athena import AthenaOperator
from airflow.sdk import Param, dag

from pipelines.config import ATHENA_RESULTS_TEMPLATE, DATA_LAKE_BUCKET_TEMPLATE
from pipelines.dag_defaults import DEFAULT_ARGS

COPY_TABLE_DDL = (
    "CREATE EXTERNAL TABLE IF NOT EXISTS athena_check_copy (id string, v bigint) "
    "PARTITIONED BY (hour string) STORED AS PARQUET "
    f"LOCATION 's3://{DATA_LAKE_BUCKET_TEMPLATE}/check/athena_copy/'"
)
COPY_HOUR = (
    "INSERT INTO athena_check_copy SELECT id, v, partition_3 FROM {{ params.source_table }} "
    "WHERE partition_3 = '%s'"
)


@dag(
    schedule=None,
    default_args=DEFAULT_ARGS,
    tags=["test"],
    doc_md=__doc__,
    params={"source_table": Param("athena_check_raw", type="string", pattern=r"^[a-z_][a-z0-9_]*$")},
)
def localaws_athena_insert():
    common = {"database": "traffic", "output_location": ATHENA_RESULTS_TEMPLATE, "sleep_time": 1}
    create_copy_table = AthenaOperator(task_id="create_copy_table", query=COPY_TABLE_DDL, **common)
    copy_hour_deferrable = AthenaOperator(
        task_id="copy_hour_deferrable", query=COPY_HOUR % "00", deferrable=True, **common
    )
    copy_hour_blocking = AthenaOperator(
        task_id="copy_hour_blocking", query=COPY_HOUR % "01", deferrable=False, **common
    )
    create_copy_table >> [copy_hour_deferrable, copy_hour_blocking]


localaws_athena_insert()
