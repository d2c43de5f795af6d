-- Summary of a run: rows written per event day over the run's range.
SELECT year || '-' || month || '-' || day AS event_day, count(*) AS rows
FROM traffic.events_by_event_time
WHERE concat(year, month, day, hour) BETWEEN '{{ ti.xcom_pull(task_ids='plan_chunks')['first_hour'] }}' AND '{{ ti.xcom_pull(task_ids='plan_chunks')['last_hour'] }}'
GROUP BY 1
ORDER BY 1
