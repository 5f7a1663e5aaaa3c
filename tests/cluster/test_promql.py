"""The chart's alerts and dashboard query metrics the operator really exports.

A renamed metric, a histogram queried without ``_bucket`` or a typo in a
panel fails silently in Prometheus (an empty result, an alert that never
fires). So every PromQL expression of the PrometheusRule and of the Grafana
dashboard (panels and template variables), both as the chart renders them,
is taken apart into the metric names it reads, and each name must appear
in a live scrape of the operator's ``/metrics`` after it has done some work:
a run that succeeded and a run that went stale (labelled series exist only
once something happened). Names compare as Prometheus stores the samples: a
histogram ``h`` is ``h_bucket``, ``h_sum`` and ``h_count`` (each standing for
``h``), a counter ``c_total``; a query on a histogram's bare name is caught.

The names are found by a small tokenizer, not a PromQL parser: strings,
label matchers (``{...}``), ranges (``[...]``) and grouping label lists
(``by (...)``, ``on (...)``...) are blanked out; what is left that looks like
an identifier is a function or keyword (known lists; an unknown function is
an error, not a metric) or a metric name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.cluster._delivery import render
from tests.support.kube import Cluster, Timeout, wait_for
from tests.support.operator import OperatorProcess
from tests.support.schedules import (
    history,
    job_template,
    rfc3339,
    schedule,
    seconds_ahead,
    wait_status,
)


def _words(text: str) -> frozenset[str]:
    """Names written as text: a list literal of 80 names would take 80 lines."""
    return frozenset(text.split())


FUNCTIONS = _words(
    """
    abs absent absent_over_time acos acosh asin asinh atan atanh avg_over_time ceil changes
    clamp clamp_max clamp_min cos cosh count_over_time day_of_month day_of_week day_of_year
    days_in_month deg delta deriv double_exponential_smoothing exp floor histogram_avg
    histogram_count histogram_fraction histogram_quantile histogram_stddev histogram_stdvar
    histogram_sum holt_winters hour idelta increase info irate label_join label_replace
    last_over_time ln log10 log2 mad_over_time max_over_time min_over_time minute month pi
    predict_linear present_over_time quantile_over_time rad rate resets round scalar sgn sin
    sinh sort sort_by_label sort_by_label_desc sort_desc sqrt stddev_over_time
    stdvar_over_time sum_over_time tan tanh time timestamp vector year
    """
)
AGGREGATIONS = _words(
    "sum min max avg group stddev stdvar count count_values bottomk topk quantile limitk "
    "limit_ratio"
)
KEYWORDS = _words("and or unless bool offset atan2 inf nan start end")
GROUPING = ("by", "without", "on", "ignoring", "group_left", "group_right")
# Series Prometheus adds to every scrape itself; no exporter serves them.
SCRAPE_SERIES = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_LABEL_LIST = re.compile(r"\b(?:" + "|".join(GROUPING) + r")\s*\([^()]*\)")
# Grafana's label_values(metric, label): the label is not a metric.
_LABEL_VALUES = re.compile(r"\blabel_values\s*\(\s*(?:([^,()]*?)\s*,\s*)?[A-Za-z_]\w*\s*\)")
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL (or Grafana variable) expression reads."""
    text = _STRING.sub('""', expr)
    text = _LABEL_VALUES.sub(lambda m: m.group(1) or "", text)
    text = _MATCHERS.sub("{}", text)
    text = _RANGE.sub("[]", text)
    text = _LABEL_LIST.sub(" ", text)
    names: set[str] = set()
    for match in _IDENT.finditer(text):
        word, before = match.group(), text[match.start() - 1 : match.start()]
        if before and (before.isdigit() or before in "$."):
            continue  # a number's exponent or unit (1e3, 5m), a Grafana variable
        if word in KEYWORDS:
            continue  # also before a parenthesis: `a and on (x) (b == 1)`
        if text[match.end() :].lstrip().startswith("("):
            if word not in FUNCTIONS | AGGREGATIONS:
                raise ValueError(f"unknown function {word!r} in {expr!r}")
            continue
        names.add(word)
    return names


# --- the tokenizer itself ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (le, result) (rate(x_bucket{a="b", c=~"d|e"}[5m]))', {"x_bucket"}),
        ("sum(rate(a_total[1m])) by (ns) / on (ns) group_left (team) b", {"a_total", "b"}),
        ('absent(up{job="j"} == 1)', {"up"}),
        ("topk(10, sum without (pod) (increase(c[$__rate_interval]))) > 1e3", {"c"}),
        ('x offset 5m and bool y unless z{q="sum(w)"}', {"x", "y", "z"}),
        ("label_values(g, job)", {"g"}),
        ("sum(g and on (job, instance) (leader == 1))", {"g", "leader"}),
        ("label_values(namespace)", set()),
        (
            'histogram_quantile(0.95, sum by (le) (rate(h_bucket{n=~"$ns"}[$__interval])))',
            {"h_bucket"},
        ),
        ("vector(0) > 0", set()),
    ],
)
def test_metric_names(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_an_unknown_function_is_an_error_not_a_metric() -> None:
    with pytest.raises(ValueError, match="rated"):
        metric_names("rated(x[5m])")


# --- the chart's expressions ------------------------------------------------------------


def dashboard_queries(node: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """(where, expression) for each panel target and query variable of a dashboard."""
    if isinstance(node, dict):
        title = node.get("title") or node.get("name") or where
        if isinstance(node.get("expr"), str):
            yield f"{title} [{node.get('refId', '')}]", node["expr"]
        if node.get("type") == "query":
            query = node.get("query")
            text = query.get("query") if isinstance(query, dict) else query
            if isinstance(text, str):
                yield f"variable {node.get('name')}", text
        for value in node.values():
            yield from dashboard_queries(value, title)
    elif isinstance(node, list):
        for value in node:
            yield from dashboard_queries(value, where)


def chart_expressions(cluster: Cluster, namespace: str, tmp_path: Path) -> list[tuple[str, str]]:
    values = {
        "metrics": {"prometheusRule": {"enabled": True}, "serviceMonitor": {"enabled": True}},
        "dashboard": {"enabled": True},
    }
    docs = render(
        cluster, release="jobwarden", namespace=namespace, values=values, directory=tmp_path
    )
    (rule,) = [d for d in docs if d["kind"] == "PrometheusRule"]
    out = [(f"alert {r['alert']}", r["expr"]) for g in rule["spec"]["groups"] for r in g["rules"]]
    assert len(out) >= 3, out
    (dashboard,) = [
        d for d in docs if d["kind"] == "ConfigMap" and "jobwarden.json" in (d.get("data") or {})
    ]
    panels = list(dashboard_queries(json.loads(dashboard["data"]["jobwarden.json"])))
    assert len(panels) >= 5, panels
    return out + panels


def exported(scrape: str) -> set[str]:
    """The sample names a scrape holds (``_total``, ``_bucket``... as Prometheus stores them)."""
    return {s.name for family in text_string_to_metric_families(scrape) for s in family.samples}


def ended(result: str) -> Callable[[dict[str, Any]], bool]:
    return lambda status: bool(history(status)) and history(status)[0].get("result") == result


def test_alerts_and_dashboard_query_only_exported_metrics(
    cluster: Cluster, namespace: str, operator: OperatorProcess, tmp_path: Path
) -> None:
    at = rfc3339(seconds_ahead(3))
    cluster.apply(
        schedule("ok", runAt=at, jobTemplate=job_template(run_seconds=1)), namespace=namespace
    )
    cluster.apply(
        schedule("slow", runAt=at, staleAfter="3s", jobTemplate=job_template(run_seconds=None)),
        namespace=namespace,
    )
    for name, result in (("ok", "Succeeded"), ("slow", "Stale")):
        wait_status(cluster, namespace, name, ended(result), timeout=40, what=f"a run {result}")
    expressions = [
        (where, expr, metric_names(expr))
        for where, expr in chart_expressions(cluster, namespace, tmp_path)
    ]
    used = {name for _, _, names in expressions for name in names}

    def complete_scrape() -> set[str] | None:
        got = exported(operator.metrics())
        return got if used - SCRAPE_SERIES <= got else None

    # A reconcile writes status before it counts the run in its metrics: wait
    # for the scrape to catch up with what status already shows.
    try:
        have = wait_for(complete_scrape, timeout=15, what="every queried metric in a scrape")
    except Timeout:
        have = exported(operator.metrics())  # the assertion below names what is missing
    missing: dict[str, set[str]] = {}
    for where, expr, names in expressions:
        if names - have - SCRAPE_SERIES:
            missing[f"{where}: {expr}"] = names - have - SCRAPE_SERIES
    assert not missing, f"not in the operator's /metrics: {missing}"
    # The comparison was about the operator's own metrics, not vacuous.
    assert {n for n in used if n.startswith("jobwarden_")} >= {
        "jobwarden_runs_total",
        "jobwarden_stale_runs_total",
        "jobwarden_schedules",
        "jobwarden_active_runs",
        "jobwarden_schedule_lag_seconds_bucket",
        "jobwarden_run_duration_seconds_bucket",
        "jobwarden_leader",
    }
