"""``make bench``: run every ``benchmarks/bench_*.py`` and print one summary of ratios.

A benchmark script prints whatever detail it likes, and one line per headline figure:

    RESULT <name> <ratio> <goal-or-dash> <free text: what over what>

e.g. ``RESULT dynamodb_batch_vs_putitem 14.2 >=10 items/s batched over items/s PutItem``.
The ratio is always measured against a baseline taken in the same run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    results: list[list[str]] = []
    failures = []
    for script in sorted(HERE.glob("bench_*.py")):
        print(f"\n### {script.name}", flush=True)
        proc = subprocess.run([sys.executable, "-m", f"benchmarks.{script.stem}"], capture_output=True, text=True, cwd=HERE.parent)
        print(proc.stdout, end="")
        if proc.returncode != 0:
            failures.append(script.name)
            print(proc.stderr[-4000:], file=sys.stderr)
        for line in proc.stdout.splitlines():
            if line.startswith("RESULT "):
                name, ratio, goal, *what = line.split()[1:]
                results.append([script.stem, name, ratio, goal, " ".join(what)])
    print("\n## Summary (ratios against a baseline measured in the same run)")
    for row in results:
        # an absolute figure (a size or a count) is said so; every other figure is a ratio
        unit = " MB" if row[1].endswith("_mb") else "" if row[1].endswith("_count") else "x"
        print(f"{row[0]:28} {row[1]:44} {row[2]:>8}{unit:3}  goal {row[3]:>6}  {row[4]}")
    if failures:
        print(f"failed: {', '.join(failures)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
