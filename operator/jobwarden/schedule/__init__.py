"""The pure schedule engine: next runs, missed runs, jitter, completion, the DST rule.

No kopf and no API calls here; everything is a function of the spec, the
schedule's key and the clock passed in.
"""

from jobwarden.schedule.checks import check_spec, load_spec
from jobwarden.schedule.describe import describe
from jobwarden.schedule.planning import CatchUpPlan, is_complete, jitter_delay, plan_catch_up
from jobwarden.schedule.timeline import Timeline, build_timeline

__all__ = [
    "CatchUpPlan",
    "Timeline",
    "build_timeline",
    "check_spec",
    "describe",
    "is_complete",
    "jitter_delay",
    "load_spec",
    "plan_catch_up",
]
