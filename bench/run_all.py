"""Run every benchmark, each in its own process, then regenerate docs/BENCHMARKS.md.

Each script writes ``bench/results/<name>.json`` (see ``bench/results.py``); a script that is
not there (``scale.py`` lives on its own branch until merged) is skipped with a note. A
failing script stops nothing: the others still run, docs/BENCHMARKS.md is still written
from the results present, and the exit code is 1. On the 2-core development machine the whole suite
takes about 10 minutes.

    python bench/run_all.py [--only parse,cli] [--skip scale]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = (
    "parse",
    "cli",
    "noop",
    "offline",
    "geocode",
    "request_path",
    "load_mysql",
    "history",
    "pipeline",
    "report",
    "e2e",
    "scale",
)
"""The benchmarks, in the order they run: fast and service-free first."""


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmarks, then render docs/BENCHMARKS.md; 0 when all succeeded."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated names to run, e.g. cli,parse")
    parser.add_argument("--skip", default="", help="comma-separated names to leave out")
    parser.add_argument("--no-render", action="store_true", help="do not write BENCHMARKS.md")
    args = parser.parse_args(argv)
    only = {name for name in args.only.split(",") if name}
    skip = {name for name in args.skip.split(",") if name}
    unknown = (only | skip) - set(SCRIPTS)
    if unknown:
        parser.error(f"unknown bench {', '.join(sorted(unknown))}; known: {', '.join(SCRIPTS)}")
    failed = []
    started = time.perf_counter()
    for name in SCRIPTS:
        script = HERE / f"{name}.py"
        if (only and name not in only) or name in skip:
            continue
        if not script.exists():
            print(f"== {name}: {script.name} not found, skipped", flush=True)
            continue
        print(f"== {name}", flush=True)
        began = time.perf_counter()
        code = subprocess.run([sys.executable, str(script)], check=False).returncode
        print(f"== {name}: exit {code} after {time.perf_counter() - began:.0f} s", flush=True)
        if code:
            failed.append(name)
    if not args.no_render:
        subprocess.run([sys.executable, str(HERE / "render.py")], check=True)
    print(f"all benchmarks: {time.perf_counter() - started:.0f} s", end="")
    print(f"; failed: {', '.join(failed)}" if failed else "")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
