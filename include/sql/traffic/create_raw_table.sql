-- The raw feed as Kinesis Firehose lands it: JSON lines (some gzip) under arrival-hour
-- prefixes YYYY/MM/DD/HH/. Every value is typed string, as in the real feed; the
-- crawler (traffic_raw_crawler, a catalog target) keeps the schema and partitions in sync.
CREATE EXTERNAL TABLE IF NOT EXISTS traffic.raw_events (
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
PARTITIONED BY (partition_0 string, partition_1 string, partition_2 string, partition_3 string)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
LOCATION 's3://{{ var.value.get('data_lake_bucket', 'pipelines-data-lake') }}/traffic/raw/'
