"""The result tables' public names and keys (docs/PIPELINES.md), in one place.

The pipelines write them and the results API reads them; both import these names from
here. Deliberately free of imports, so the api-server loads nothing else by reading them.
"""

COVID_TABLE = "covid_stats"
COVID_PARTITION = "CASES"  # covid_stats' one partition key value: pk = CASES, sk = the ISO date
DIRECTORY_TABLE = "department_directory"
MARKET_TABLE = "market_orders"

# department_directory's index for listing and prefix search (infra/pipelines.yaml): every
# item carries DEPARTMENT_LISTING_ATTRIBUTE = DEPARTMENT_LISTING.
DEPARTMENT_INDEX = "department_names"
DEPARTMENT_LISTING_ATTRIBUTE = "listing"
DEPARTMENT_LISTING = "DEPARTMENTS"
