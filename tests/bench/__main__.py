"""`make bench`: every benchmark scenario, or those named (`make bench BENCH="pull"`); an
opt-in scenario (`make bench BENCH=soak`) runs only when named.

Each scenario is a module of this package with an `async def main()` that measures its
subject next to a floor taken in the same run, and prints a table of rates, latencies,
ratios to the floor and memory.
"""

from __future__ import annotations

import nudgetools  # noqa: F401, I001  first: it turns off gRPC's fork handlers before grpc loads

import importlib
import sys

from nudgelib import runtime

# In the order they run; a scenario whose module does not exist yet is reported, not run.
SCENARIOS = ("pull", "ingestion", "segmentation", "decision", "delivery")
# Run only when named: the soak takes ten minutes and measures stability, not speed.
OPT_IN = ("soak",)


def main(names: list[str]) -> None:
    for name in names or SCENARIOS:
        if name not in SCENARIOS + OPT_IN:
            raise SystemExit(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS + OPT_IN)}")
        try:
            module = importlib.import_module(f"tests.bench.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"tests.bench.{name}":
                raise
            print(f"\n[{name}] no benchmark yet")
            continue
        print(f"\n[{name}]", flush=True)
        runtime.run(module.main())


if __name__ == "__main__":
    main(sys.argv[1:])
