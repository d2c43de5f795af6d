-- The raw feed as Kinesis Firehose lands it: JSON lines (some gzip) under arrival-hour
-- prefixes YYYY/MM/DD/HH/. Every value is typed string, as in the real feed. The schema is
-- this declaration: crawler traffic_raw_crawler (infra/pipelines.yaml) adds the arrival-hour
-- folders no crawl has read yet as partitions (incremental, so the cost of a run never grows
-- with history), inheriting this storage, and only logs a schema difference (LOG/LOG). The
-- table is named after its folder (raw/), as Glue names an S3 target's table.
-- Typed partition columns, compared one by one in queries: the Glue catalog prunes them.
CREATE EXTERNAL TABLE IF NOT EXISTS traffic.raw (
  beschrijvende_id string,
  unieke_id string,
  lve_nr string,
  tijd_waarneming string,
  tijd_laatst_gewijzigd string,
  actueel_publicatie string,
  beschikbaar string,
  defect string,
  geldig string,
  verkeersintensiteit_klasse1 string,
  voertuigsnelheid_rekenkundig_klasse1 string,
  voertuigsnelheid_harmonisch_klasse1 string,
  verkeersintensiteit_klasse2 string,
  voertuigsnelheid_rekenkundig_klasse2 string,
  voertuigsnelheid_harmonisch_klasse2 string,
  verkeersintensiteit_klasse3 string,
  voertuigsnelheid_rekenkundig_klasse3 string,
  voertuigsnelheid_harmonisch_klasse3 string,
  verkeersintensiteit_klasse4 string,
  voertuigsnelheid_rekenkundig_klasse4 string,
  voertuigsnelheid_harmonisch_klasse4 string,
  verkeersintensiteit_klasse5 string,
  voertuigsnelheid_rekenkundig_klasse5 string,
  voertuigsnelheid_harmonisch_klasse5 string,
  rekendata_bezettingsgraad string,
  rekendata_beschikbaarheidsgraad string,
  rekendata_onrustigheid string
)
PARTITIONED BY (arrival_year int, arrival_month int, arrival_day int, arrival_hour int)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
LOCATION 's3://{{ var.value.get('data_lake_bucket', 'pipelines-data-lake') }}/traffic/raw/'
