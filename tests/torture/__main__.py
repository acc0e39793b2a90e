"""python -m tests.torture --files N --kills K [--seed S] [--keep DIR]"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

from tests.torture.harness import run_torture


def main() -> None:
    parser = argparse.ArgumentParser(description="crash torture of ingest-agent")
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    print(f"torture seed {seed} (replay with --seed {seed})", flush=True)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=False)
        report = run_torture(args.keep, args.files, args.kills, seed)
    else:
        with tempfile.TemporaryDirectory(prefix="torture-") as tmp:
            report = run_torture(Path(tmp), args.files, args.kills, seed)
    print(f"files {report.files}, kills {report.kills}, {report.seconds:.0f} s, "
          f"final counts {report.counts}")
    for line in report.violations:
        print(f"VIOLATION: {line}")
    print("invariants hold" if report.ok else f"{len(report.violations)} violation(s)")
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
