-- Summary of a run: rows written per event day over the run's range. The partition
-- columns are compared one by one (zero-padded strings), so the catalog prunes them.
SELECT year || '-' || month || '-' || day AS event_day, count(*) AS rows
FROM traffic.events_by_event_time
WHERE (
{%- for d in ti.xcom_pull(task_ids='plan_chunks')['event_days'] %}
  {{ "OR " if not loop.first }}(year = '{{ d.year }}' AND month = '{{ d.month }}' AND day = '{{ d.day }}' AND hour BETWEEN '{{ d.hour_from }}' AND '{{ d.hour_to }}')
{%- endfor %}
)
GROUP BY 1
ORDER BY 1
