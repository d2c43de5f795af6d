"""COVID daily merge: validate two CSV sources, join them, diff against the table.

Pure functions over bytes and DataFrames; no Airflow, no AWS. Row numbers in errors are
the line numbers of the file (the header is line 1), so a user can open the file there.

Errors never quote what the file contains beyond plausible column names: a source URL is
chosen by whoever triggers a run, and the error travels to the log, the alert e-mail and
SNS. A file that is not what it should be (say ``/proc/self/environ``) must not be read
back to the trigger user through them; file, row and column are enough to find the cell.
The source itself is named through ``pipelines.redaction.redact_url`` (no userinfo, no
query string).

What a count may be (``_counts``, ``_plausible_rises``), so that nothing the table cannot
hold, or no count of people can be, is ever stored:

* a non-negative whole number (``2.5``, ``-3``, ``nan``, text: refused);
* at most ``MAX_PLAUSIBLE_COUNT`` (10,000,000,000: more people than live on Earth, and far
  inside both int64 and DynamoDB's 38-digit numbers). ``1e300`` or
  ``9223372036854775808`` used to wrap to ``-9223372036854775808`` on the way to int64;
* a cumulative series may rise above the highest value of every earlier date by at most
  ``MAX_DAILY_RISE`` (10,000,000) per day elapsed since the previous row (the US never
  added more than about 1.4 million cases in a day). Falls are *not* refused here:
  upstream corrections lower cumulative counts, and JHU stopped reporting US recoveries
  (0 from 2020-12-14 on); the removal guard of ``plan`` weighs how much a run lowers.

Each refusal names the file, the row and the column (never the cell's value).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field

import pandas as pd

from pipelines.errors import BadInput
from pipelines.guard import Removal, RemovalLimit, removal_problem
from pipelines.redaction import redact_url

CASES_COLUMNS = ("date", "cases", "deaths")
RECOVERIES_COLUMNS = ("Date", "Country/Region", "Recovered")
COUNTRY = "US"
OUTPUT_COLUMNS = ["date", "cases", "deaths", "recoveries"]


# What a column name may look like to be repeated in an error (no "=", ":", quotes, NUL...).
_SHOWABLE_COLUMN = re.compile(r"[A-Za-z][A-Za-z0-9 _/().-]{0,40}")
MAX_SHOWN_COLUMNS = 20


class SourceValidationError(BadInput):
    """A source file is not what the pipeline expects; nothing has been written."""

    def __init__(self, source: str, problem: str, row: int | None = None, column: str | None = None):
        source = _source_name(source)
        where = source
        if row is not None:
            where += f", row {row}"
        if column is not None:
            where += f", column {column!r}"
        super().__init__(f"{where}: {problem}")
        self.source, self.row, self.column = source, row, column


def _source_name(source: str) -> str:
    """The source as a message may quote it: each URL redacted (``a + b`` names both sources)."""
    return " + ".join(redact_url(part) for part in str(source).split(" + "))


def describe_header(columns: list[str], required: tuple[str, ...]) -> str:
    """The header's names when it is plausibly the right kind of CSV; otherwise only their count.

    Names are repeated only when at least one required column is there and every name looks
    like a column name: a one-line secret file (a password, a token) shares no column.
    """
    names = [str(c) for c in columns]
    plausible = (
        any(name in required for name in names)
        and len(names) <= MAX_SHOWN_COLUMNS
        and all(_SHOWABLE_COLUMN.fullmatch(name) for name in names)
    )
    if plausible:
        return "found " + ", ".join(names)
    return f"the first line has {len(names)} field(s), not a header of this file type (not shown)"


def _read_csv(data: bytes, source: str, required: tuple[str, ...]) -> pd.DataFrame:
    if not data.strip():
        raise SourceValidationError(source, "the file is empty")
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise SourceValidationError(source, "binary data (a NUL byte), not CSV text", row=line)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise SourceValidationError(source, f"not UTF-8 text (byte {error.start})", row=line) from error
    head = text.lstrip()[:200].lower()
    if head.startswith(("<!doctype", "<html", "<?xml")):
        raise SourceValidationError(source, "got an HTML/XML document instead of CSV (an error page?)")
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except pd.errors.ParserError as error:
        # pandas' message names line and field counts only (never cell contents)
        raise SourceValidationError(source, f"not a valid CSV file ({error})".replace("\n", " ")) from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise SourceValidationError(
            source,
            f"missing required column(s) {', '.join(missing)}; {describe_header(list(frame.columns), required)}",
        )
    if frame.empty:
        raise SourceValidationError(source, "the file has a header but no rows")
    frame["__row"] = range(2, len(frame) + 2)
    return frame


def _dates(frame: pd.DataFrame, column: str, source: str) -> pd.Series:
    parsed = pd.to_datetime(frame[column], format="%Y-%m-%d", errors="coerce")
    bad = frame[parsed.isna()]
    if not bad.empty:
        first = bad.iloc[0]
        raise SourceValidationError(source, "not a date (YYYY-MM-DD)", int(first["__row"]), column)
    return parsed.dt.strftime("%Y-%m-%d")


MAX_PLAUSIBLE_COUNT = 10_000_000_000
MAX_DAILY_RISE = 10_000_000


def _counts(frame: pd.DataFrame, column: str, source: str) -> pd.Series:
    values = frame[column].str.strip()
    # float64 whatever pandas infers (int64, uint64 past 2**63, object for a mix): exact for
    # every whole number up to 2**53, far above the ceiling, and ordered for any larger one
    numeric = pd.to_numeric(values, errors="coerce").astype("float64")
    bad = frame[numeric.isna() | (numeric % 1 != 0) | (numeric < 0)]
    if not bad.empty:
        first = bad.iloc[0]
        raise SourceValidationError(source, "not a non-negative integer", int(first["__row"]), column)
    too_large = frame[numeric > MAX_PLAUSIBLE_COUNT]
    if not too_large.empty:
        raise SourceValidationError(
            source,
            f"more than {MAX_PLAUSIBLE_COUNT:,} (more people than live on Earth): not a count",
            int(too_large.iloc[0]["__row"]),
            column,
        )
    return numeric.astype("int64")


def _plausible_rises(frame: pd.DataFrame, columns: dict[str, str], source: str) -> None:
    """Refuse a cumulative count that jumps absurdly above every earlier date's value.

    ``columns`` maps the frame's count columns to the file's names (for the message). The
    bound is against the running maximum, not the previous row, so a day that dips (a
    correction, a gap reported as 0) and the return to the earlier level are both fine.
    """
    ordered = frame.sort_values("date")
    days = pd.to_datetime(ordered["date"]).diff().dt.days
    for name, file_column in columns.items():
        values = ordered[name].astype("float64")
        allowed = values.cummax().shift(1) + MAX_DAILY_RISE * days
        jumped = ordered[values > allowed]  # the first row compares with NaN: never refused
        if not jumped.empty:
            raise SourceValidationError(
                source,
                f"rises more than {MAX_DAILY_RISE:,} a day above every earlier date's value "
                "(not plausible for a cumulative count)",
                int(jumped.iloc[0]["__row"]),
                file_column,
            )


def _unique_dates(frame: pd.DataFrame, source: str, column: str) -> None:
    duplicated = frame[frame["date"].duplicated(keep="first")]
    if not duplicated.empty:
        first = duplicated.iloc[0]
        earlier = int(frame.loc[frame["date"] == first["date"], "__row"].iloc[0])
        raise SourceValidationError(
            source, f"duplicate date (also on row {earlier})", int(first["__row"]), column
        )


def parse_cases(data: bytes, source: str) -> pd.DataFrame:
    """NYT ``us.csv``: ``date,cases,deaths`` (cumulative)."""
    frame = _read_csv(data, source, CASES_COLUMNS)
    result = pd.DataFrame(
        {
            "date": _dates(frame, "date", source),
            "cases": _counts(frame, "cases", source),
            "deaths": _counts(frame, "deaths", source),
            "__row": frame["__row"],
        }
    )
    _unique_dates(result, source, "date")
    _plausible_rises(result, {"cases": "cases", "deaths": "deaths"}, source)
    return result.drop(columns="__row").reset_index(drop=True)


def parse_recoveries(data: bytes, source: str) -> pd.DataFrame:
    """Johns Hopkins combined time series: keep the US rows' ``Date`` and ``Recovered``."""
    frame = _read_csv(data, source, RECOVERIES_COLUMNS)
    us = frame[frame["Country/Region"] == COUNTRY]
    if us.empty:
        raise SourceValidationError(source, f"no rows for Country/Region {COUNTRY!r}")
    if "Province/State" in us.columns:
        us = us[us["Province/State"].str.strip() == ""]  # the country total, not its provinces
    us = us.assign(Recovered=us["Recovered"].replace("", "0"))  # a missing recovery count is 0
    result = pd.DataFrame(
        {
            "date": _dates(us, "Date", source),
            "recoveries": _counts(us, "Recovered", source),
            "__row": us["__row"],
        }
    )
    _unique_dates(result, source, "Date")
    _plausible_rises(result, {"recoveries": "Recovered"}, source)
    return result.drop(columns="__row").reset_index(drop=True)


def merge_sources(cases: pd.DataFrame, recoveries: pd.DataFrame) -> pd.DataFrame:
    """Inner join on date (a source a day ahead or behind is harmless); missing recoveries -> 0."""
    merged = cases.merge(recoveries, on="date", how="inner", validate="one_to_one")
    merged["recoveries"] = merged["recoveries"].fillna(0)
    for column in ("cases", "deaths", "recoveries"):
        merged[column] = merged[column].astype("int64")
    return merged[OUTPUT_COLUMNS].sort_values("date").reset_index(drop=True)


Row = tuple[int, int, int]


@dataclass
class Changes:
    """What one load must do to the table to make it equal the merged data."""

    puts_new: dict[str, Row] = field(default_factory=dict)
    puts_changed: dict[str, Row] = field(default_factory=dict)
    deletes: list[str] = field(default_factory=list)
    unchanged: int = 0

    @property
    def counts(self) -> dict[str, int]:
        return {
            "inserted": len(self.puts_new),
            "updated": len(self.puts_changed),
            "deleted": len(self.deletes),
            "unchanged": self.unchanged,
        }

    @property
    def writes(self) -> int:
        return len(self.puts_new) + len(self.puts_changed) + len(self.deletes)


def as_rows(frame: pd.DataFrame) -> dict[str, Row]:
    return {
        str(d): (int(c), int(de), int(r))
        for d, c, de, r in frame[OUTPUT_COLUMNS].itertuples(index=False, name=None)
    }


def diff(previous: dict[str, Row], current: dict[str, Row]) -> Changes:
    changes = Changes()
    for date, row in sorted(current.items()):
        if date not in previous:
            changes.puts_new[date] = row
        elif previous[date] != row:
            changes.puts_changed[date] = row
        else:
            changes.unchanged += 1
    changes.deletes = sorted(set(previous) - set(current))
    return changes


COUNT_NAMES = ("cases", "deaths", "recoveries")
DEFAULT_MAX_REMOVAL_SHARE = 0.05
# Days a run may delete or lower whatever the share: a young table is not blocked by a revision.
REMOVAL_FLOOR = 3


def lowered(before: Row, after: Row, max_share: float) -> bool:
    """Whether any count of a day falls by more than ``max_share`` of its stored value.

    Upstream revisions move cumulative counts a little (duplicates removed); a count
    rewritten to zero, or halved, is not a revision.
    """
    return any(b > 0 and a < (1 - max_share) * b for b, a in zip(before, after, strict=True))


def removal_problems(
    table: dict[str, Row], current: dict[str, Row], changes: Changes, limit: RemovalLimit
) -> list[str]:
    """Why applying ``changes`` (table -> current) shrinks the table suspiciously; [] when it does not.

    Two signs of a truncated or broken source, both counted against what is stored:
    the days it deletes plus the days whose counts it lowers by more than the share (the
    shared guard's limit, ``pipelines.guard``), and a drop of the highest cumulative count of
    a column (the latest total) by more than the share.
    """
    lowered_days = sorted(
        date for date, row in changes.puts_changed.items() if lowered(table[date], row, limit.max_share)
    )
    problems = [
        removal_problem(
            Removal(
                subject="covid_stats",
                unit="rows",
                stored=len(table),
                removed=len(changes.deletes) + len(lowered_days),
                parts={"deleted": len(changes.deletes), "lowered": len(lowered_days)},
                examples=(changes.deletes + lowered_days),
            ),
            limit,
        )
    ]
    for index, name in enumerate(COUNT_NAMES):
        before = max((row[index] for row in table.values()), default=0)
        after = max((row[index] for row in current.values()), default=0)
        if before > 0 and after < (1 - limit.max_share) * before:
            problems.append(
                f"covid_stats: this run would lower the highest cumulative {name} from {before:,} to "
                f"{after:,} ({(before - after) / before:.1%} less; limit {limit.max_share:.1%})"
            )
    return [problem for problem in problems if problem]


def rows_to_csv(rows: dict[str, Row]) -> bytes:
    """The merged rows as staged for ``plan`` (and kept as the run's audit copy)."""
    lines = ["date,cases,deaths,recoveries"] + [f"{d},{c},{de},{r}" for d, (c, de, r) in sorted(rows.items())]
    return ("\n".join(lines) + "\n").encode()


def rows_from_csv(data: bytes) -> dict[str, Row]:
    frame = pd.read_csv(io.BytesIO(data), dtype={"date": str})
    return as_rows(frame)
