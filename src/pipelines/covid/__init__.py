"""covid_daily: NYT cases + Johns Hopkins recoveries, merged and loaded incrementally."""
