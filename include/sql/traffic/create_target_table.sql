-- Events by EVENT time, one row per location (lve_nr) and minute, Parquet, partitioned
-- by the event hour. INSERT INTO appends, so the DAG empties a chunk's partitions first.
CREATE EXTERNAL TABLE IF NOT EXISTS traffic.events_by_event_time (
  uniqueid int,
  lvenr int,
  recordtimestamp bigint,
  currentspeed double,
  vehiclecount bigint,
  previousspeed double,
  trafficintensityclass2 bigint,
  trafficintensityclass3 bigint,
  trafficintensityclass4 bigint,
  trafficintensityclass5 bigint,
  speeddiffindicator int,
  avgspeed3minutes double,
  avgspeed20minutes double,
  trafficjamindicator int,
  trafficjamindicatorlong int
)
PARTITIONED BY (year string, month string, day string, hour string)
STORED AS PARQUET
LOCATION 's3://{{ var.value.get('data_lake_bucket', 'pipelines-data-lake') }}/traffic/transformed/'
