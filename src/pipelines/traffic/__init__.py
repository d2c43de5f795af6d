"""traffic_repartition: raw traffic events by arrival hour -> Parquet by event time, via Athena."""
