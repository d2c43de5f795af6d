"""The JSON shapes of the results API, as its OpenAPI document shows them."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from results_api.domain import Granularity, MarketSort, SortOrder

FactValue = str | int | float | bool


class CovidPeriod(BaseModel):
    period: str = Field(
        description="The day (2020-03-02), ISO week (2020-W10) or month (2020-03)", examples=["2020-W10"]
    )
    start: date = Field(description="First stored day counted in this period")
    end: date = Field(description="Last stored day counted in this period")
    days: int = Field(description="Number of daily changes summed")
    new_cases: int | None = Field(
        description="Sum of daily differences of cumulative cases (may be negative; null: source gap)"
    )
    new_deaths: int | None = Field(
        description="Sum of daily differences of cumulative deaths (may be negative; null: source gap)"
    )
    new_recoveries: int | None = Field(
        description="Sum of daily differences of cumulative recoveries (may be negative; null: source gap)"
    )
    gaps: list[str] = Field(
        description="Metrics with days in a source gap (left out of the sums), e.g. ['recoveries']"
    )
    complete: bool = Field(description="False for a week or month the data do not cover whole")
    first_day: bool = Field(
        description="The period holds the series' first stored day, counted from zero (its own totals)"
    )


class CovidChanges(BaseModel):
    granularity: Granularity
    baseline_day: date | None = Field(
        description="The stored day the first change is measured against (null: no data)"
    )
    periods: list[CovidPeriod]
    data_as_of: str | None = Field(
        None, description="When covid_daily last loaded covid_stats (ISO 8601, UTC); null: never"
    )


class CovidTotals(BaseModel):
    day: date = Field(description="The stored day (YYYY-MM-DD)")
    cases: int | None = Field(description="Cumulative cases up to and including the day")
    deaths: int | None = Field(description="Cumulative deaths up to and including the day")
    recoveries: int | None = Field(
        description="Cumulative recoveries (null: the source stopped reporting them, e.g. US from 2020-12-14)"
    )
    gaps: list[str] = Field(description="Metrics null on this day (source gaps), e.g. ['recoveries']")


class CovidCumulative(BaseModel):
    days: list[CovidTotals] = Field(description="The stored days in [from, to], in order")
    gap_days: dict[str, int] = Field(
        description="How many days of the answer each metric is missing on (every metric listed)"
    )
    data_as_of: str | None = Field(
        None, description="When covid_daily last loaded covid_stats (ISO 8601, UTC); null: never"
    )


class Department(BaseModel):
    """One item of ``department_directory``: the department's employees and their facts."""

    model_config = ConfigDict(extra="allow")

    department: str
    employee_count: int
    employees: dict[str, dict[str, FactValue]] = Field(
        description="employee -> facts (numbers as numbers, booleans as booleans)"
    )
    source_key: str | None = Field(None, description="The S3 key of the CSV this record was loaded from")
    loaded_at: str | None = Field(None, description="When the pipeline wrote it (ISO 8601, UTC)")


class MarketType(BaseModel):
    """One item of ``market_orders``: a type's aggregates on a region's market, buy and sell apart."""

    model_config = ConfigDict(extra="allow")

    region_id: int
    type_id: int
    type_name: str | None = Field(
        None,
        description="The type's name as ESI gives it (e.g. 18: Plagioclase), stored by market_orders "
        "when the type was new to the region; null: not known (show the id)",
        examples=["Plagioclase"],
    )
    sell_volume: int
    buy_volume: int
    sell_orders: int
    buy_orders: int
    min_sell_price: float | None = None
    max_buy_price: float | None = None
    sell_avg_price: float | None = Field(None, description="Volume-weighted average sell price")
    buy_avg_price: float | None = Field(None, description="Volume-weighted average buy price")
    last_modified: str | None = Field(None, description="ESI snapshot's Last-Modified")


class MarketRegion(BaseModel):
    region_id: int
    sort: MarketSort
    order: SortOrder
    types_total: int = Field(description="How many types the region has in the table")
    types: list[MarketType] = Field(description="The top types by `sort`")
    data_as_of: str | None = Field(None, description="When market_orders last loaded (ISO 8601, UTC)")


class DepartmentList(BaseModel):
    departments: list[str] = Field(description="Department names in order, starting with `prefix`")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: last page")
    data_as_of: str | None = Field(None, description="When department_directory last loaded")


class ErrorMessage(BaseModel):
    detail: str
