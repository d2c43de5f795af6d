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
    new_cases: int = Field(description="Sum of daily differences of cumulative cases (may be negative)")
    new_deaths: int = Field(description="Sum of daily differences of cumulative deaths (may be negative)")
    new_recoveries: int = Field(
        description="Sum of daily differences of cumulative recoveries (may be negative)"
    )


class CovidChanges(BaseModel):
    granularity: Granularity
    baseline_day: date | None = Field(
        description="The stored day the first change is measured against (null: no data)"
    )
    periods: list[CovidPeriod]


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


class ErrorMessage(BaseModel):
    detail: str
