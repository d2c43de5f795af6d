-- One chunk of traffic_repartition (docs/PIPELINES.md section 1), rendered with computed values only:
--   arrival_days: per UTC day, the raw arrival hours to read (chunk start - window
--     lookback .. chunk end + max lateness), typed partition columns compared one by one,
--     which the Glue catalog prunes (a concat() of them it cannot);
--   lookback_start_epoch/chunk_start_epoch/chunk_end_epoch: integers (event time, UTC);
--     lookback_start_epoch must be at most chunk_start_epoch - 1200 (the 20-minute window);
--   measuring_points: a list of integers (empty: all). With a list, the chunk's partitions are
--     rewritten with the listed points' new rows PLUS every other row already there (read here
--     from the old files, which the chunk writer removes only after this query succeeded): a
--     new row replaces the stored row of its location and minute, and a stored row of a listed
--     point with no new row (its readings now defect) goes; every other row stays as it was.
-- Windows are frames in EVENT time (RANGE over the minute's epoch seconds), not in rows, and
-- run over the lookback too; only the chunk's own minutes are inserted. So no value depends
-- on where a chunk begins or on gaps in the feed.
-- event hours {{ chunk.chunk_start_epoch }}..{{ chunk.chunk_end_epoch }} (read by the chunk writer: whose write this is)
INSERT INTO traffic.events_by_event_time
WITH deliveries AS (
  -- every delivered version of every reading in the chunk's event range (+ lookback)
  SELECT
    CAST(unieke_id AS integer) AS unieke_id,
    CAST(lve_nr AS integer) AS lve_nr,
    CAST(tijd_waarneming AS bigint) AS observed_at,
    -- ISO 8601 with the publisher's offset (+01:00 / +02:00): compared as instants, not text
    from_iso8601_timestamp(tijd_laatst_gewijzigd) AS changed_at,
    CAST(defect AS integer) AS defect,
    CAST(rekendata_bezettingsgraad AS integer) AS occupancy,
    CAST(verkeersintensiteit_klasse2 AS integer) AS i2,
    CAST(verkeersintensiteit_klasse3 AS integer) AS i3,
    CAST(verkeersintensiteit_klasse4 AS integer) AS i4,
    CAST(verkeersintensiteit_klasse5 AS integer) AS i5,
    CAST(voertuigsnelheid_rekenkundig_klasse2 AS double) AS s2,
    CAST(voertuigsnelheid_rekenkundig_klasse3 AS double) AS s3,
    CAST(voertuigsnelheid_rekenkundig_klasse4 AS double) AS s4,
    CAST(voertuigsnelheid_rekenkundig_klasse5 AS double) AS s5
  FROM traffic.raw
  WHERE (
{%- for d in chunk.arrival_days %}
    {{ "OR " if not loop.first }}(arrival_year = {{ d.year }} AND arrival_month = {{ d.month }} AND arrival_day = {{ d.day }}
        AND arrival_hour BETWEEN {{ d.hour_from }} AND {{ d.hour_to }})
{%- endfor %}
  )
    AND CAST(tijd_waarneming AS bigint) >= {{ chunk.lookback_start_epoch }}
    AND CAST(tijd_waarneming AS bigint) < {{ chunk.chunk_end_epoch }}
{%- if chunk.measuring_points %}
    AND CAST(unieke_id AS integer) IN ({{ chunk.measuring_points | join(', ') }})
{%- endif %}
),
versions AS (
  SELECT
    *,
    -- a re-published reading replaces the earlier one: the latest tijd_laatst_gewijzigd wins.
    -- Versions with the same change time (Firehose re-deliveries are byte-identical copies)
    -- are ordered by their values too, so the pick never depends on file or scan order.
    row_number() OVER (
      PARTITION BY unieke_id, observed_at
      ORDER BY changed_at DESC NULLS LAST, defect DESC NULLS LAST, occupancy NULLS LAST, lve_nr NULLS LAST,
               i2 NULLS LAST, i3 NULLS LAST, i4 NULLS LAST, i5 NULLS LAST,
               s2 NULLS LAST, s3 NULLS LAST, s4 NULLS LAST, s5 NULLS LAST
    ) AS version_rank
  FROM deliveries
),
readings AS (
  -- de-duplicated first, filtered after: a correction that flags a reading defect removes it
  SELECT *
  FROM versions
  WHERE version_rank = 1
    AND occupancy > -1
    AND defect = 0
),
detectors AS (
  SELECT
    unieke_id,
    lve_nr,
    observed_at - observed_at % 60 AS minute,
    -- mean speed over the classes that saw vehicles; NULL when none did (never integer division)
    (IF(i2 > 0, s2, 0.0) + IF(i3 > 0, s3, 0.0) + IF(i4 > 0, s4, 0.0) + IF(i5 > 0, s5, 0.0))
      / NULLIF(IF(i2 > 0, 1, 0) + IF(i3 > 0, 1, 0) + IF(i4 > 0, 1, 0) + IF(i5 > 0, 1, 0), 0) AS speed,
    i2 + i3 + i4 + i5 AS vehicles,
    i2, i3, i4, i5
  FROM readings
),
locations AS (
  SELECT
    lve_nr,
    minute,
    max(unieke_id) AS unique_id,
    avg(speed) AS current_speed,
    CAST(round(avg(vehicles)) AS bigint) AS vehicle_count,
    CAST(sum(i2) AS bigint) AS c2,
    CAST(sum(i3) AS bigint) AS c3,
    CAST(sum(i4) AS bigint) AS c4,
    CAST(sum(i5) AS bigint) AS c5
  FROM detectors
  GROUP BY lve_nr, minute
),
windowed AS (
  -- minute is epoch seconds on whole minutes, so frames are in seconds of event time:
  --   previousSpeed: the latest earlier minute in [t - 20 min, t) = [t - 1200 s, t - 60 s];
  --   avgSpeed3Minutes over (t - 3 min, t] = [t - 120 s, t]; avgSpeed20Minutes over
  --   (t - 20 min, t] = [t - 1140 s, t]. avg skips minutes without a speed.
  SELECT
    *,
    last_value(current_speed) OVER (
      PARTITION BY lve_nr ORDER BY minute RANGE BETWEEN 1200 PRECEDING AND 60 PRECEDING
    ) AS previous_speed,
    avg(current_speed) OVER (
      PARTITION BY lve_nr ORDER BY minute RANGE BETWEEN 120 PRECEDING AND CURRENT ROW
    ) AS avg3,
    avg(current_speed) OVER (
      PARTITION BY lve_nr ORDER BY minute RANGE BETWEEN 1140 PRECEDING AND CURRENT ROW
    ) AS avg20
  FROM locations
),
computed AS (
  SELECT
    unique_id,
    lve_nr,
    minute,
    current_speed,
    vehicle_count,
    previous_speed,
    c2, c3, c4, c5,
    CASE WHEN current_speed - previous_speed >= 20 THEN 1
         WHEN current_speed - previous_speed <= -20 THEN -1
         ELSE 0 END AS speed_diff,
    avg3,
    avg20,
    CASE WHEN avg3 >= 0 AND avg3 <= 40 THEN 1 WHEN avg3 > 40 AND avg3 <= 250 THEN 0 ELSE -1 END AS jam,
    CASE WHEN avg20 >= 0 AND avg20 <= 40 THEN 1 WHEN avg20 > 40 AND avg20 <= 250 THEN 0 ELSE -1 END AS jam_long,
    date_format(from_unixtime(minute), '%Y') AS year,
    date_format(from_unixtime(minute), '%m') AS month,
    date_format(from_unixtime(minute), '%d') AS day,
    date_format(from_unixtime(minute), '%H') AS hour
  FROM windowed
  WHERE minute >= {{ chunk.chunk_start_epoch }} AND minute < {{ chunk.chunk_end_epoch }}
)
SELECT * FROM computed
{%- if chunk.measuring_points %}
UNION ALL
-- the rows of every other point already stored in the chunk's event hours, as they were
SELECT
  stored.uniqueid, stored.lvenr, stored.recordtimestamp, stored.currentspeed, stored.vehiclecount,
  stored.previousspeed, stored.trafficintensityclass2, stored.trafficintensityclass3,
  stored.trafficintensityclass4, stored.trafficintensityclass5, stored.speeddiffindicator,
  stored.avgspeed3minutes, stored.avgspeed20minutes, stored.trafficjamindicator,
  stored.trafficjamindicatorlong, stored.year, stored.month, stored.day, stored.hour
FROM traffic.events_by_event_time AS stored
LEFT JOIN computed AS replacement
  ON replacement.lve_nr = stored.lvenr AND replacement.minute = stored.recordtimestamp
WHERE (
{%- for d in chunk.event_days %}
    {{ "OR " if not loop.first }}(stored.year = '{{ d.year }}' AND stored.month = '{{ d.month }}' AND stored.day = '{{ d.day }}'
        AND stored.hour BETWEEN '{{ d.hour_from }}' AND '{{ d.hour_to }}')
{%- endfor %}
  )
  AND stored.recordtimestamp >= {{ chunk.chunk_start_epoch }} AND stored.recordtimestamp < {{ chunk.chunk_end_epoch }}
  AND (stored.uniqueid IS NULL OR stored.uniqueid NOT IN ({{ chunk.measuring_points | join(', ') }}))
  AND replacement.lve_nr IS NULL
{%- endif %}
