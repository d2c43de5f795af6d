"""The transformation of PIPELINES.md section 1 in pandas: the independent reference the
tests compare Athena's output with (never used by the DAG itself)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def transform(
    raw: pd.DataFrame, start_epoch: int, end_epoch: int, points: list[int] | None = None
) -> pd.DataFrame:
    """Rows for event minutes in [start_epoch, end_epoch), windows computed over all of ``raw``."""
    df = raw.drop_duplicates().copy()
    for column in df.columns:
        if column != "beschrijvende_id" and column != "tijd_laatst_gewijzigd":
            df[column] = pd.to_numeric(df[column], errors="coerce")
    df = df[(df["rekendata_bezettingsgraad"] > -1) & (df["defect"] == 0)]
    if points:
        df = df[df["unieke_id"].isin(points)]
    df["minute"] = df["tijd_waarneming"] - df["tijd_waarneming"] % 60
    df = df[df["minute"] < end_epoch]
    speeds, counts = [], []
    for n in (2, 3, 4, 5):
        seen = df[f"verkeersintensiteit_klasse{n}"] > 0
        speeds.append(df[f"voertuigsnelheid_rekenkundig_klasse{n}"].where(seen))
        counts.append(df[f"verkeersintensiteit_klasse{n}"])
    df["speed"] = pd.concat(speeds, axis=1).mean(axis=1, skipna=True)
    df["vehicles"] = sum(counts)
    grouped = df.groupby(["lve_nr", "minute"], as_index=False).agg(
        uniqueId=("unieke_id", "max"),
        currentSpeed=("speed", "mean"),
        vehicles=("vehicles", "mean"),
        c2=("verkeersintensiteit_klasse2", "sum"),
        c3=("verkeersintensiteit_klasse3", "sum"),
        c4=("verkeersintensiteit_klasse4", "sum"),
        c5=("verkeersintensiteit_klasse5", "sum"),
    )
    grouped["vehicleCount"] = np.floor(grouped["vehicles"] + 0.5).astype("int64")  # round half up, as Athena
    grouped = grouped.sort_values(["lve_nr", "minute"])
    by_location = grouped.groupby("lve_nr")["currentSpeed"]
    grouped["previousSpeed"] = by_location.shift(1)
    grouped["avgSpeed3Minutes"] = by_location.transform(lambda s: s.rolling(3, min_periods=1).mean())
    grouped["avgSpeed20Minutes"] = by_location.transform(lambda s: s.rolling(20, min_periods=1).mean())
    diff = grouped["currentSpeed"] - grouped["previousSpeed"]
    grouped["speedDiffIndicator"] = np.select([diff >= 20, diff <= -20], [1, -1], 0)

    def jam(avg: pd.Series) -> np.ndarray:
        return np.select([(avg >= 0) & (avg <= 40), (avg > 40) & (avg <= 250)], [1, 0], -1)

    grouped["trafficJamIndicator"] = jam(grouped["avgSpeed3Minutes"])
    grouped["trafficJamIndicatorLong"] = jam(grouped["avgSpeed20Minutes"])
    out = grouped[(grouped["minute"] >= start_epoch) & (grouped["minute"] < end_epoch)]
    return out.rename(columns={"lve_nr": "lveNr", "minute": "recordTimestamp"})[
        ["uniqueId", "lveNr", "recordTimestamp", "currentSpeed", "vehicleCount", "previousSpeed",
         "c2", "c3", "c4", "c5", "speedDiffIndicator", "avgSpeed3Minutes", "avgSpeed20Minutes",
         "trafficJamIndicator", "trafficJamIndicatorLong"]
    ].reset_index(drop=True)  # fmt: skip
