"""The store reads the very tables the pipelines write."""

from __future__ import annotations

from results_api import store


def test_the_store_names_the_tables_and_partition_the_pipelines_write():
    from pipelines.covid import steps as covid
    from pipelines.directory import steps as directory
    from pipelines.market import steps as market

    assert (store.COVID_TABLE, store.COVID_PARTITION) == (covid.TABLE, covid.PARTITION_VALUE)
    assert store.DIRECTORY_TABLE == directory.TABLE
    assert store.MARKET_TABLE == market.TABLE
