"""The COVID merge, validation and diff, on the real files (no Airflow, no AWS)."""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines.covid.domain import (
    REMOVAL_FLOOR,
    SourceValidationError,
    as_rows,
    diff,
    merge_sources,
    parse_cases,
    parse_recoveries,
    removal_problems,
)
from pipelines.guard import LargeRemovalRefused, RemovalLimit, enforce_removal_limit
from tests.conftest import REPO

DATA = REPO / "sample_data" / "covid"
NYT = (DATA / "nyt_us_snapshot_000bd91_through_2022-04-19.csv").read_bytes()
JHU = (DATA / "jhu_time-series-19-covid-combined_US_only.csv").read_bytes()
JHU_MIXED = (DATA / "jhu_time-series-19-covid-combined_subset_US_KoreaSouth_Afghanistan.csv").read_bytes()


def lines(data: bytes) -> list[str]:
    return data.decode().splitlines()


def join(rows: list[str]) -> bytes:
    return ("\n".join(rows) + "\n").encode()


def test_real_files_merge_to_the_overlapping_days_with_integers():
    merged = merge_sources(parse_cases(NYT, "nyt.csv"), parse_recoveries(JHU, "jhu.csv"))
    assert (merged["date"].iloc[0], merged["date"].iloc[-1], len(merged)) == ("2020-01-22", "2021-03-16", 420)
    assert all(str(merged[c].dtype) == "int64" for c in ("cases", "deaths", "recoveries"))
    row = merged.set_index("date").loc["2020-12-14"]
    assert row["recoveries"] == 0  # upstream stopped reporting US recoveries that day
    assert merged.set_index("date").loc["2020-06-01", "recoveries"] > 0


def test_the_us_filter_ignores_other_countries_and_quoted_names():
    assert parse_recoveries(JHU_MIXED, "mixed.csv").equals(parse_recoveries(JHU, "us.csv"))


@pytest.mark.parametrize(
    ("drop", "source"),
    [("first", "cases"), ("last", "cases"), ("first", "recoveries"), ("last", "recoveries")],
)
def test_an_extra_day_at_either_end_of_either_source_is_harmless(drop, source):
    nyt, jhu = lines(NYT), lines(JHU)
    # restrict NYT to JHU's range first, so that each scenario removes a day of overlap
    jhu_dates = {line.split(",")[0] for line in jhu[1:]}
    nyt = [nyt[0]] + [line for line in nyt[1:] if line.split(",")[0] in jhu_dates]
    rows = nyt if source == "cases" else jhu
    trimmed = [rows[0]] + (rows[2:] if drop == "first" else rows[1:-1])
    if source == "cases":
        merged = merge_sources(parse_cases(join(trimmed), "c"), parse_recoveries(join(jhu), "r"))
    else:
        merged = merge_sources(parse_cases(join(nyt), "c"), parse_recoveries(join(trimmed), "r"))
    assert len(merged) == 419
    expected_first = "2020-01-23" if drop == "first" else "2020-01-22"
    expected_last = "2021-03-15" if drop == "last" else "2021-03-16"
    assert (merged["date"].iloc[0], merged["date"].iloc[-1]) == (expected_first, expected_last)


def test_diff_counts_new_changed_deleted_and_unchanged():
    previous = {"2020-01-01": (1, 0, 0), "2020-01-02": (2, 0, 0), "2020-01-03": (3, 0, 0)}
    current = {"2020-01-02": (2, 0, 0), "2020-01-03": (4, 1, 0), "2020-01-04": (5, 1, 0)}
    changes = diff(previous, current)
    assert changes.counts == {"inserted": 1, "updated": 1, "deleted": 1, "unchanged": 1}
    assert changes.deletes == ["2020-01-01"] and list(changes.puts_changed) == ["2020-01-03"]
    assert diff(current, current).writes == 0


def test_a_revised_history_updates_exactly_the_revised_rows():
    original = merge_sources(parse_cases(NYT, "c"), parse_recoveries(JHU, "r"))
    revised_lines = lines(NYT)
    revised_dates = []
    for index in (100, 200, 300):
        date, cases, deaths = revised_lines[index].split(",")
        revised_lines[index] = f"{date},{int(cases) + 7},{deaths}"
        revised_dates.append(date)
    revised = merge_sources(parse_cases(join(revised_lines), "c"), parse_recoveries(JHU, "r"))
    changes = diff(as_rows(original), as_rows(revised))
    assert sorted(changes.puts_changed) == sorted(revised_dates)
    assert changes.counts["inserted"] == changes.counts["deleted"] == 0


def _replace(data: bytes, line: int, text: str) -> bytes:
    rows = lines(data)
    rows[line - 1] = text
    return join(rows)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"date,cases\n2020-01-01,1\n", "nyt.csv: missing required column(s) deaths"),
        (_replace(NYT, 5, "2020-13-01,5,0"), "nyt.csv, row 5, column 'date': not a date"),
        (
            _replace(NYT, 7, "2020-01-26,-3,0"),
            "nyt.csv, row 7, column 'cases': not a non-negative integer",
        ),
        (_replace(NYT, 8, "2020-01-27,2.5,0"), "row 8, column 'cases': not a non-negative integer"),
        (
            _replace(NYT, 9, "2020-01-21,5,0"),
            "nyt.csv, row 9, column 'date': duplicate date (also on row 2)",
        ),
        (b"", "nyt.csv: the file is empty"),
        (b"date,cases,deaths\n", "nyt.csv: the file has a header but no rows"),
        (
            b"<!DOCTYPE html><html><body>429 Too Many Requests</body></html>",
            "HTML/XML document instead of CSV",
        ),
        (b"date,cases,deaths\n2020-01-01,1,0\n2020-01-02,\xff\xfe,0\n", "nyt.csv, row 3: not UTF-8 text"),
    ],
)
def test_malformed_cases_files_are_refused_naming_file_row_and_value(data, message):
    with pytest.raises(SourceValidationError) as error:
        parse_cases(data, "nyt.csv")
    assert message in str(error.value)


def test_recoveries_without_us_rows_are_refused():
    no_us = join([line for line in lines(JHU_MIXED) if ",US," not in line])
    with pytest.raises(SourceValidationError, match="jhu.csv: no rows for Country/Region 'US'"):
        parse_recoveries(no_us, "jhu.csv")


def test_an_empty_recovered_cell_counts_as_zero():
    data = _replace(JHU, 3, "2020-01-23,US,,1,,0")
    frame = parse_recoveries(data, "jhu.csv")
    assert frame.set_index("date").loc["2020-01-23", "recoveries"] == 0
    assert isinstance(frame, pd.DataFrame)


# Ten billion (more people than live on Earth) is the most a count may be; written out here
# rather than imported, so that the test states the rule independently of the code.
TOO_MANY = "10000000001"


@pytest.mark.parametrize(
    ("line", "column"),
    [
        ("2020-01-26,1e300,0", "cases"),  # used to be stored as -9223372036854775808
        ("2020-01-26,9223372036854775808,0", "cases"),  # 2**63: one past int64, same wrap
        ("2020-01-26,18446744073709551617,0", "cases"),  # past uint64 too
        (f"2020-01-26,{TOO_MANY},0", "cases"),
        (f"2020-01-26,5,{TOO_MANY}", "deaths"),
        ("2020-01-26,5,1e300", "deaths"),
    ],
)
def test_numbers_no_count_can_be_are_refused_naming_file_row_and_column(line, column):
    with pytest.raises(SourceValidationError) as error:
        parse_cases(_replace(NYT, 7, line), "nyt.csv")
    assert str(error.value) == (
        f"nyt.csv, row 7, column '{column}': "
        "more than 10,000,000,000 (more people than live on Earth): not a count"
    )


def test_an_implausible_recovered_count_is_refused_naming_its_row():
    header, *rows = lines(JHU)
    first = rows[0].split(",")  # Date,Country/Region,Province/State,Confirmed,Recovered,Deaths
    first[4] = "9223372036854775808"
    with pytest.raises(SourceValidationError) as error:
        parse_recoveries(join([header, ",".join(first), *rows[1:]]), "jhu.csv")
    assert str(error.value).startswith("jhu.csv, row 2, column 'Recovered': more than 10,000,000,000")


def test_the_largest_plausible_count_is_stored_exactly():
    frame = parse_cases(b"date,cases,deaths\n2020-01-01,10000000000,9999999999\n", "nyt.csv")
    assert frame.to_dict("records") == [{"date": "2020-01-01", "cases": 10_000_000_000, "deaths": 9_999_999_999}]


def test_a_cumulative_count_that_jumps_absurdly_is_refused_naming_its_row():
    # 10,000,000 a day above the highest earlier value is the most a series may rise
    ok = b"date,cases,deaths\n2020-01-01,5000,1\n2020-01-02,10005000,1\n2020-01-05,40005000,1\n"
    assert parse_cases(ok, "c.csv")["cases"].tolist() == [5_000, 10_005_000, 40_005_000]  # 3 days: 30M
    jump = b"date,cases,deaths\n2020-01-01,5000,1\n2020-01-02,10005001,1\n"
    with pytest.raises(SourceValidationError) as error:
        parse_cases(jump, "c.csv")
    assert str(error.value) == (
        "c.csv, row 3, column 'cases': rises more than 10,000,000 a day above every earlier "
        "date's value (not plausible for a cumulative count)"
    )
    # the rows are judged in date order, whatever their order in the file
    unordered = b"date,cases,deaths\n2020-01-03,1,30000000\n2020-01-01,1,0\n2020-01-02,1,10000000\n"
    with pytest.raises(SourceValidationError, match=r"c.csv, row 2, column 'deaths': rises"):
        parse_cases(unordered, "c.csv")


def test_dips_and_gaps_of_a_cumulative_count_are_not_refused():
    # a correction lowers a total; a gap reads 0; the return to the earlier level is no jump
    data = (
        b"date,cases,deaths\n2021-01-01,80000000,900000\n2021-01-02,79976001,899000\n"
        b"2021-01-03,0,0\n2021-01-04,80100000,901000\n"
    )
    assert parse_cases(data, "c.csv")["cases"].tolist() == [80_000_000, 79_976_001, 0, 80_100_000]
    # the real JHU file: US recoveries fall from 6,298,082 to 0 on 2020-12-14 and stay there
    recoveries = parse_recoveries(JHU, "jhu.csv").set_index("date")["recoveries"]
    assert recoveries.max() == 6_298_082 and recoveries.loc["2020-12-14"] == 0


def test_a_source_is_named_without_its_userinfo_or_query():
    bad = _replace(NYT, 7, "2020-01-26,-3,0")
    with pytest.raises(SourceValidationError) as error:
        parse_cases(bad, "https://user:s3cr3t@evil.com/x?token=abc")
    assert str(error.value) == (
        "https://[redacted]@evil.com/x?[redacted], row 7, column 'cases': not a non-negative integer"
    )
    both = SourceValidationError("https://u:s3cr3t@a/x + s3://b/covid/y?token=abc", "no date in common")
    assert str(both) == "https://[redacted]@a/x + s3://b/covid/y?[redacted]: no date in common"


SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYSECRETKEY"
ENVIRON_LIKE = (
    f"PATH=/usr/bin\0AWS_SECRET_ACCESS_KEY={SECRET}\0AIRFLOW__API_AUTH__JWT_SECRET={SECRET}\0HOME=/root\0"
).encode()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (ENVIRON_LIKE, "binary data (a NUL byte), not CSV text"),
        (ENVIRON_LIKE.replace(b"\0", b"\n"), "not a header of this file type (not shown)"),
        (
            f"{SECRET}\n".encode(),
            "missing required column(s) date, cases, deaths; the first line has 1 field",
        ),
        (f"date,cases,deaths\n2020-01-01,{SECRET},0\n".encode(), "row 2, column 'cases': not a non-negative"),
        (f"date,cases,deaths\n{SECRET},1,0\n".encode(), "row 2, column 'date': not a date"),
        (f"date,cases,deaths\n2020-01-01,1,0\n2020-01-02,1,0,{SECRET}\n".encode(), "not a valid CSV file"),
        (
            f"date,{SECRET}=1,x\n2020-01-01,1,0\n".encode(),
            "missing required column(s) cases, deaths; the first",
        ),
    ],
)
def test_errors_never_quote_file_contents(data, expected):
    with pytest.raises(SourceValidationError) as error:
        parse_cases(data, "/proc/self/environ")
    assert expected in str(error.value)
    assert SECRET not in str(error.value) and "wJalr" not in str(error.value)


def test_plausible_column_names_are_named_in_the_missing_column_error():
    with pytest.raises(
        SourceValidationError, match=r"missing required column\(s\) deaths; found date, cases"
    ):
        parse_cases(b"date,cases\n2020-01-01,1\n", "nyt.csv")


def _merged(nyt: bytes = NYT) -> dict:
    return as_rows(merge_sources(parse_cases(nyt, "c"), parse_recoveries(JHU, "r")))


LIMIT = RemovalLimit(max_share=0.05, floor=REMOVAL_FLOOR)


def problems_of(table: dict, current: dict, max_share: float = 0.05) -> list[str]:
    return removal_problems(table, current, diff(table, current), RemovalLimit(max_share, REMOVAL_FLOOR))


def test_a_truncated_source_is_a_suspicious_shrink_naming_the_counts():
    table = _merged()
    truncated = _merged(join(lines(NYT)[:31]))  # header + 30 days, 29 of them in JHU too
    problems = problems_of(table, truncated)
    # 420 - 29 = 391 deleted; 391 / 420 = 93.1%; limit max(3, floor(0.05 x 420) = 21) = 21
    assert problems[0] == (
        "covid_stats: this run would remove or lower 391 of the 420 stored rows (93.1%: 391 deleted; "
        "e.g. 2020-02-20, 2020-02-21, 2020-02-22, 2020-02-23, 2020-02-24 and 386 more); the limit is "
        "21 rows (max_removal_share 5.0% of 420, and at least 3)"
    )
    with pytest.raises(LargeRemovalRefused, match='"allow_large_removal": true') as refused:
        enforce_removal_limit(problems, allow_large_removal=False)
    assert "nothing was written" in str(refused.value)
    assert enforce_removal_limit(problems, allow_large_removal=True) == problems


def test_lowered_cumulative_totals_are_a_suspicious_shrink_even_without_deletes():
    table = _merged()
    halved = {date: (cases // 2, deaths, recoveries) for date, (cases, deaths, recoveries) in table.items()}
    rows, highest = problems_of(table, halved)
    # every day with cases >= 2 is lowered by half (> 5%); the first days (1 case) 1 // 2 = 0 too
    lowered = sum(1 for (cases, _d, _r) in table.values() if cases > 0)
    assert f"remove or lower {lowered} of the 420 stored rows" in rows and f"{lowered} lowered" in rows
    assert (
        "lower the highest cumulative cases from 29,569,140 to 14,784,570 (50.0% less; limit 5.0%)" in highest
    )


def test_days_rewritten_to_zero_are_refused_though_nothing_is_deleted():
    """The issue's probe: a 30-day table, a source rewriting 29 of the days to zero."""
    days = [f"2021-01-{day:02d}" for day in range(1, 31)]
    table = {date: (1000 * n, 10 * n, 5 * n) for n, date in enumerate(days, start=1)}
    zeroed = {date: (0, 0, 0) if date != days[-1] else row for date, row in table.items()}
    changes = diff(table, zeroed)
    assert changes.counts == {"inserted": 0, "updated": 29, "deleted": 0, "unchanged": 1}
    [problem] = problems_of(table, zeroed)  # the latest (highest) totals are untouched
    # limit max(3, floor(0.05 x 30) = 1) = 3; 29 / 30 = 96.7%
    assert problem == (
        "covid_stats: this run would remove or lower 29 of the 30 stored rows (96.7%: 29 lowered; "
        "e.g. 2021-01-01, 2021-01-02, 2021-01-03, 2021-01-04, 2021-01-05 and 24 more); the limit is "
        "3 rows (max_removal_share 5.0% of 30, and at least 3)"
    )


def test_the_floor_lets_a_small_table_lose_a_few_rows():
    table = {f"2021-01-{day:02d}": (day, 0, 0) for day in range(1, 11)}  # 10 rows: 5% is 0 rows
    three_gone = dict(list(table.items())[3:])
    assert problems_of(table, three_gone) == []  # 3 deletes: the floor
    four_gone = dict(list(table.items())[4:])
    assert "remove or lower 4 of the 10 stored rows" in problems_of(table, four_gone)[0]


def test_ordinary_revisions_growth_and_a_first_load_are_not_shrinks():
    table = _merged()
    assert problems_of({}, table) == []
    first_days_dropped = dict(list(table.items())[20:])  # 20 of 420 rows: 4.8%
    assert problems_of(table, first_days_dropped) == []
    # upstream revisions: every day's cases 1% lower, deaths raised (a raise never counts)
    revised = {d: (c - c // 100, de + 5, r) for d, (c, de, r) in table.items()}
    assert problems_of(table, revised) == []
    grown = dict(table, **{"2021-03-17": (29_600_000, 537_000, 0)})
    assert problems_of(table, grown) == []
    one_more_dropped = dict(list(table.items())[22:])  # 22 of 420: 5.2%
    assert problems_of(table, one_more_dropped)
    assert problems_of(table, one_more_dropped, max_share=0.06) == []  # 22 <= floor(0.06 x 420) = 25
