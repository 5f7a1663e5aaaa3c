"""The CRD-driven fuzzer, long: many admitted specs played forward, every crash collected.

Run with ``.venv/bin/python bench/fuzz.py [--examples 20000] [--steps 8] [--seed N]``.

The same generator and properties as tests/unit/test_fuzz_spec.py
(tests/support/specfuzz.py), without stopping at the first failure: each
example that raises is recorded by where it raised (exception type and the
innermost frame in jobwarden), and the smallest spec seen for each is
printed with its traceback. Prints the examples run, how many specs were
valid, plans made, Jobs created, the largest status, and the crashes.
Exit status 1 when anything crashed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from tests.support.specfuzz import exercise, specs


@dataclass
class Crash:
    count: int = 0
    spec: dict[str, Any] = field(default_factory=dict)
    size: int = sys.maxsize
    trace: str = ""


@dataclass
class Tally:
    examples: int = 0
    valid: int = 0
    plans: int = 0
    jobs: int = 0
    largest_status: int = 0
    crashes: dict[str, Crash] = field(default_factory=dict)


def signature(exc: BaseException) -> str:
    """Where an exception came from: its type and the innermost jobwarden frame."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "jobwarden" in f.filename]
    where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
    return f"{type(exc).__name__} at {where}"


def run(examples: int, steps: int, seed_value: int | None) -> Tally:
    tally = Tally()

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(spec=specs(), data=st.data())
    def body(spec: dict[str, Any], data: st.DataObject) -> None:
        tally.examples += 1
        try:
            result = exercise(spec, data, steps=steps)
        except Exception as exc:  # every crash is the finding, not the end of the run
            crash = tally.crashes.setdefault(signature(exc), Crash())
            crash.count += 1
            size = len(json.dumps(spec, default=str))
            if size < crash.size:
                crash.spec, crash.size = spec, size
                crash.trace = "".join(traceback.format_exception(exc)[-6:])
            return
        tally.valid += result.valid
        tally.plans += result.plans
        tally.jobs += result.jobs
        tally.largest_status = max(tally.largest_status, result.status_bytes)

    if seed_value is not None:
        body = seed(seed_value)(body)
    body()
    return tally


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=20_000)
    parser.add_argument("--steps", type=int, default=8, help="plans per example")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    started = time.monotonic()
    tally = run(args.examples, args.steps, args.seed)
    elapsed = time.monotonic() - started
    print(f"examples run:        {tally.examples} in {elapsed:.0f} s")
    print(f"valid specs:         {tally.valid} ({tally.valid / max(1, tally.examples):.0%})")
    print(f"plans made:          {tally.plans}")
    print(f"Jobs created:        {tally.jobs}")
    print(f"largest status:      {tally.largest_status} bytes")
    print(f"distinct crashes:    {len(tally.crashes)}")
    for where, crash in sorted(tally.crashes.items(), key=lambda kv: -kv[1].count):
        print(f"\n--- {where}: {crash.count} examples; smallest spec:")
        print(json.dumps(crash.spec, default=str))
        print(crash.trace)
    return 1 if tally.crashes else 0


if __name__ == "__main__":
    sys.exit(main())
