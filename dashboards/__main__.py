"""``python -m dashboards [--check] [--out DIR]``: write (or check) the dashboards' JSON."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dashboards.generate import OUT_DIR, differences, write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dashboards",
        description="Generate the Grafana dashboards' JSON from the code in dashboards/.",
    )
    parser.add_argument("--out", type=Path, default=OUT_DIR, help=f"folder (default {OUT_DIR})")
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if the files are out of date"
    )
    args = parser.parse_args(argv)
    if args.check:
        stale = differences(args.out)
        for name in stale:
            print(f"{args.out / name} is out of date: run python -m dashboards", file=sys.stderr)
        return 1 if stale else 0
    for path in write(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
