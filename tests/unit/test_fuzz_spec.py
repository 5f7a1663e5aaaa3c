"""The CRD-driven fuzzer in CI: a few hundred admitted specs, played forward in simulated time.

Property: nothing escapes parsing, planning, Job rendering or status rendering
but the documented ``SpecError`` (reported as ``Valid=False``, never raised
out of ``plan``); a refused spec starts no Job; every Job name is a DNS-1123
label; every status is one the CRD admits and fits its bound. About a third
of the specs are valid (bench/fuzz.py prints the share); ``bench/fuzz.py``
runs the same for longer.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.specfuzz import exercise, specs


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(spec=specs(), data=st.data())
def test_admitted_specs_never_crash_the_operator(spec: dict[str, Any], data: st.DataObject) -> None:
    run = exercise(spec, data)
    assert run.plans >= 1
    if not run.valid:
        assert run.jobs == 0, "a spec the operator refuses started runs"
