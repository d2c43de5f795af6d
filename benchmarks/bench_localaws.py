"""The offline stack's own cost: what our layer adds on top of moto and on top of DuckDB.

(a) DynamoDB BatchWriteItem throughput through the stack (its 25-item limit, fault
    checks, the proxy in front of moto) against a bare moto server started in the same
    run, same items, same client code (the project's ``batch_write``).
(b) Athena INSERT INTO throughput on 1M generated traffic rows (gzip JSON lines in 24
    hourly partitions -> Parquet in hourly Hive partitions): the whole offline Athena
    path (Glue catalog, S3 reads, sqlglot, DuckDB, S3 writes, partition registration)
    against the bare baseline, DuckDB reading the same files from local disk and writing
    the same partitioned Parquet.

Prints detail and ``RESULT`` lines (see benchmarks/__main__.py). About a minute.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.update(
    {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
)

import boto3  # noqa: E402
import duckdb  # noqa: E402

from localaws import LocalAWS  # noqa: E402
from localaws.server import free_port  # noqa: E402
from pipelines.aws.dynamodb import batch_write, serialize_item  # noqa: E402

ITEMS = 10_000
ROWS = 1_000_000
HOURS = 24
BUCKET = "bench-lake"

# -- (a) BatchWriteItem -------------------------------------------------------------------


def _write_items(endpoint_url: str, table: str) -> float:
    """Seconds to write ITEMS items with the project's batch writer (table created first)."""
    client = boto3.client("dynamodb", endpoint_url=endpoint_url, region_name="us-east-1")
    client.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    requests = [
        {
            "PutRequest": {
                "Item": serialize_item(
                    {"pk": f"region-{i % 20}", "sk": f"type-{i}", "volume": i * 3, "price": 1.5 + i % 7}
                )
            }
        }
        for i in range(ITEMS)
    ]
    started = time.perf_counter()
    written = batch_write(client, table, requests)
    elapsed = time.perf_counter() - started
    assert written == ITEMS, written
    assert client.describe_table(TableName=table)["Table"]["ItemCount"] == ITEMS
    return elapsed


def bench_batch_write(stack: LocalAWS) -> None:
    from moto.server import ThreadedMotoServer

    port = free_port()
    bare = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    bare.start()
    try:
        # moto's backends live in the process, shared by both servers: one table each
        moto_seconds = _write_items(f"http://127.0.0.1:{port}", "bench_bare_moto")
    finally:
        bare.stop()
    stack_seconds = _write_items(stack.endpoint_url, "bench_stack")
    stack_rate, moto_rate = ITEMS / stack_seconds, ITEMS / moto_seconds
    print(f"BatchWriteItem, {ITEMS} items in batches of 25:")
    print(f"  localaws stack: {stack_seconds:6.2f}s  {stack_rate:8.0f} items/s")
    print(f"  bare moto:      {moto_seconds:6.2f}s  {moto_rate:8.0f} items/s")
    print(
        f"RESULT batchwriteitem_stack_vs_moto {stack_rate / moto_rate:.2f} - "
        "items/s through the stack over items/s on a bare moto server"
    )


# -- (b) Athena INSERT INTO ---------------------------------------------------------------

GENERATE = """
SELECT
  'H' || (i % 500) || 'L' || (i % 4) AS beschrijvende_id,
  CAST(1000 + i % 2000 AS VARCHAR) AS unieke_id,
  CAST(100 + i % 500 AS VARCHAR) AS lve_nr,
  CAST(1704067200 + {hour} * 3600 + (i * 7) % 3600 AS VARCHAR) AS tijd_waarneming,
  CAST(i % 9 AS VARCHAR) AS verkeersintensiteit_klasse2,
  CAST(40 + (i * 13) % 90 AS VARCHAR) AS voertuigsnelheid_rekenkundig_klasse2,
  CAST((i * 3) % 5 AS VARCHAR) AS verkeersintensiteit_klasse3,
  CAST(35 + (i * 17) % 80 AS VARCHAR) AS voertuigsnelheid_rekenkundig_klasse3,
  CASE WHEN i % 97 = 0 THEN '-1' ELSE '12' END AS rekendata_bezettingsgraad,
  CASE WHEN i % 101 = 0 THEN '1' ELSE '0' END AS defect
FROM range({start}, {stop}) AS r(i)
"""

COLUMNS = [
    "beschrijvende_id",
    "unieke_id",
    "lve_nr",
    "tijd_waarneming",
    "verkeersintensiteit_klasse2",
    "voertuigsnelheid_rekenkundig_klasse2",
    "verkeersintensiteit_klasse3",
    "voertuigsnelheid_rekenkundig_klasse3",
    "rekendata_bezettingsgraad",
    "defect",
]

# the transformation, over a table ``{source}`` with the raw columns (Athena's dialect)
TRANSFORM = """
SELECT
  CAST(unieke_id AS integer),
  CAST(lve_nr AS integer),
  CAST(tijd_waarneming AS bigint),
  (IF(CAST(verkeersintensiteit_klasse2 AS integer) > 0, CAST(voertuigsnelheid_rekenkundig_klasse2 AS double), 0.0)
   + IF(CAST(verkeersintensiteit_klasse3 AS integer) > 0, CAST(voertuigsnelheid_rekenkundig_klasse3 AS double), 0.0)) / 2,
  CAST(verkeersintensiteit_klasse2 AS bigint) + CAST(verkeersintensiteit_klasse3 AS bigint),
  date_format(from_unixtime(CAST(tijd_waarneming AS bigint)), '%Y'),
  date_format(from_unixtime(CAST(tijd_waarneming AS bigint)), '%m'),
  date_format(from_unixtime(CAST(tijd_waarneming AS bigint)), '%d'),
  date_format(from_unixtime(CAST(tijd_waarneming AS bigint)), '%H')
FROM {source}
WHERE CAST(rekendata_bezettingsgraad AS integer) > -1 AND CAST(defect AS integer) = 0
"""


def generate_raw_files(folder: Path) -> list[Path]:
    """ROWS rows of string-valued JSON lines, gzip, one file per arrival hour."""
    files = []
    per_hour = ROWS // HOURS
    with duckdb.connect() as connection:
        for hour in range(HOURS):
            start, stop = hour * per_hour, ROWS if hour == HOURS - 1 else (hour + 1) * per_hour
            path = folder / f"2024/01/01/{hour:02d}/events.json.gz"
            path.parent.mkdir(parents=True, exist_ok=True)
            connection.execute(
                f"COPY ({GENERATE.format(hour=hour, start=start, stop=stop)}) TO '{path}' "
                "(FORMAT JSON, COMPRESSION GZIP)"
            )
            files.append(path)
    return files


def baseline_insert(files: list[Path], out: Path) -> int:
    """Bare DuckDB: read the local gzip JSON files, transform, write partitioned Parquet."""
    import sqlglot

    spec = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in COLUMNS) + "}"
    source = f"read_json([{', '.join(repr(str(f)) for f in files)}], format = 'newline_delimited', columns = {spec})"
    sql = sqlglot.transpile(TRANSFORM.format(source="raw"), read="athena", write="duckdb")[0]
    with duckdb.connect(config={"threads": 2}) as connection:
        connection.execute("SET TimeZone = 'UTC'")
        connection.execute(f"CREATE VIEW raw AS SELECT * FROM {source}")
        connection.execute(
            f"CREATE TEMP TABLE result AS SELECT * FROM ({sql}) AS q(uniqueid, lvenr, recordtimestamp, "
            "currentspeed, vehiclecount, year, month, day, hour)"
        )
        rows = connection.execute("SELECT count(*) FROM result").fetchone()[0]
        connection.execute(
            f"COPY result TO '{out}' (FORMAT PARQUET, PARTITION_BY (year, month, day, hour), "
            "WRITE_PARTITION_COLUMNS false)"
        )
    return rows


def _wait(athena, query_id: str) -> dict:
    while True:
        execution = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
        if execution["Status"]["State"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            return execution
        time.sleep(0.05)


def stack_insert(stack: LocalAWS, files: list[Path], folder: Path) -> tuple[float, dict]:
    s3, glue, athena = stack.client("s3"), stack.client("glue"), stack.client("athena")
    s3.create_bucket(Bucket=BUCKET)
    glue.create_database(DatabaseInput={"Name": "bench"})
    for path in files:
        s3.upload_file(str(path), BUCKET, f"raw/{path.relative_to(folder).as_posix()}")

    def run(sql: str) -> dict:
        query_id = athena.start_query_execution(
            QueryString=sql,
            QueryExecutionContext={"Database": "bench"},
            ResultConfiguration={"OutputLocation": f"s3://{BUCKET}/athena-results/"},
        )["QueryExecutionId"]
        execution = _wait(athena, query_id)
        assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"]
        return execution

    run(
        f"CREATE EXTERNAL TABLE raw ({', '.join(f'{c} string' for c in COLUMNS)}) "
        "PARTITIONED BY (partition_0 string, partition_1 string, partition_2 string, partition_3 string) "
        f"ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe' LOCATION 's3://{BUCKET}/raw/'"
    )
    run(
        "ALTER TABLE raw ADD "
        + " ".join(
            f"PARTITION (partition_0='2024', partition_1='01', partition_2='01', partition_3='{h:02d}') "
            f"LOCATION 's3://{BUCKET}/raw/2024/01/01/{h:02d}/'"
            for h in range(HOURS)
        )
    )
    run(
        "CREATE EXTERNAL TABLE speeds (uniqueid int, lvenr int, recordtimestamp bigint, currentspeed double, "
        "vehiclecount bigint) PARTITIONED BY (year string, month string, day string, hour string) "
        f"STORED AS PARQUET LOCATION 's3://{BUCKET}/speeds/'"
    )
    started = time.perf_counter()
    execution = run("INSERT INTO speeds " + TRANSFORM.format(source="raw"))
    return time.perf_counter() - started, execution


def bench_athena_insert(stack: LocalAWS) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-localaws-") as tmp:
        folder = Path(tmp) / "raw"
        started = time.perf_counter()
        files = generate_raw_files(folder)
        size = sum(f.stat().st_size for f in files)
        print(f"Athena INSERT INTO: {ROWS} raw rows, {len(files)} gzip JSON files, {size / 1e6:.1f} MB")
        print(f"  generated in {time.perf_counter() - started:.1f}s")

        started = time.perf_counter()
        rows = baseline_insert(files, Path(tmp) / "baseline")
        baseline_seconds = time.perf_counter() - started
        stack_seconds, execution = stack_insert(stack, files, folder)

    inserted = execution.get("UpdateCount") or stack.client("athena").get_query_results(
        QueryExecutionId=execution["QueryExecutionId"]
    ).get("UpdateCount")
    assert inserted == rows, (inserted, rows)
    stats = execution["Statistics"]
    partitions = stack.client("glue").get_partitions(DatabaseName="bench", TableName="speeds")["Partitions"]
    stack_rate, baseline_rate = ROWS / stack_seconds, ROWS / baseline_seconds
    print(f"  rows written: {rows} into {len(partitions)} partitions")
    print(
        f"  localaws Athena: {stack_seconds:6.2f}s  {stack_rate:9.0f} raw rows/s  "
        f"(engine {stats['EngineExecutionTimeInMillis']} ms, scanned {stats['DataScannedInBytes']} bytes)"
    )
    print(f"  bare DuckDB:     {baseline_seconds:6.2f}s  {baseline_rate:9.0f} raw rows/s")
    print(
        f"RESULT athena_insert_vs_duckdb {stack_rate / baseline_rate:.2f} - "
        "rows/s of an INSERT INTO through the offline Athena over rows/s of bare DuckDB on local files"
    )


def main() -> None:
    with LocalAWS() as stack:
        bench_batch_write(stack)
        bench_athena_insert(stack)


if __name__ == "__main__":
    main()
