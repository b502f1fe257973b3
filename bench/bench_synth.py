"""Benchmark `accord.synth.generate`: wall time and peak memory for N people.

    .venv/bin/python bench/bench_synth.py --people 1000000 [--seed 1] [--out DIR]

Runs the generator in a child process so peak RSS (ru_maxrss of children) is
the generator's alone, and prints a line for README's Benchmarks table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import json, sys, time
from pathlib import Path
from accord.synth import generate
report = generate(Path(sys.argv[1]), people=int(sys.argv[2]), seed=int(sys.argv[3]))
print(json.dumps({"rows": report.rows, "seconds": report.seconds}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: a temporary one, removed)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="accord-bench-synth-") as tmp:
        out = args.out or Path(tmp) / "synth"
        began = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(out), str(args.people), str(args.seed)],
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - began
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr)
            raise SystemExit(proc.returncode)
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        size_mb = sum(f.stat().st_size for f in out.iterdir() if f.is_file()) / 1e6

    for name, count in result["rows"].items():
        print(f"  {name:<26}{count:>12,}")
    print(
        f"wall {wall:.1f} s (generate {result['seconds']:.1f} s), peak RSS {peak_mb:,.0f} MB, output {size_mb:,.0f} MB"
    )
    cpu = f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"
    print(
        f"| synth: generate {args.people:,} people (seed {args.seed}) | {wall:.1f} s | {peak_mb:,.0f} MB peak RSS "
        f"| {size_mb:,.0f} MB written | {cpu} |"
    )


if __name__ == "__main__":
    main()
