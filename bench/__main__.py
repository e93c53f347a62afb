"""Run every benchmark module in bench/ in turn: `python -m bench [--quick] [NAME ...]`."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time

import bench


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer queries")
    parser.add_argument("names", nargs="*", help="only these modules (default: all)")
    args = parser.parse_args(argv)
    names = args.names or sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if not m.name.startswith("_"))
    failures = 0
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        print(f"== bench.{name} ==", flush=True)
        start = time.perf_counter()
        code = module.run(quick=args.quick)
        print(f"== bench.{name}: {time.perf_counter() - start:.1f} s ==\n", flush=True)
        failures += 1 if code else 0
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
