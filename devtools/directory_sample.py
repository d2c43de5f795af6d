"""Generate realistic department directory CSVs (deterministic by seed) for demo, tests, bench."""

from __future__ import annotations

import csv
import io
import random

TITLES = [
    "Engineer",
    "Senior Engineer",
    "Analyst",
    "Manager",
    "Designer",
    "Accountant",
    "Recruiter",
    "Director",
]
SITES = ["Ghent", "Antwerp", "Brussels", "Leuven", "Remote"]
HEADER = [
    "department",
    "employee",
    "title",
    "site",
    "salary",
    "fte",
    "remote",
    "start_date",
    "phone",
    "manager",
]


def directory_csv(
    departments: int = 12, employees: int = 150, seed: int = 1, skip: set[str] | None = None
) -> bytes:
    """``employees`` rows spread over ``departments`` departments; ``skip`` drops departments."""
    rng = random.Random(seed)
    names = [f"dept-{i:03d}" for i in range(departments)]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    for index in range(employees):
        department = names[index % departments]
        if skip and department in skip:
            continue
        writer.writerow(
            [
                department,
                f"emp-{index:05d}",
                rng.choice(TITLES),
                rng.choice(SITES),
                rng.randrange(32_000, 140_000, 500),
                rng.choice(["1.0", "0.8", "0.5", "1"]),
                rng.choice(["true", "false"]),
                f"20{rng.randint(10, 24)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                f"0{rng.randint(400000000, 499999999)}",
                rng.choice(["", f"emp-{rng.randrange(employees):05d}"]),
            ]
        )
    return buffer.getvalue().encode()
