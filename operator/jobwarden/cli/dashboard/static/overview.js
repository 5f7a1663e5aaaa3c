// The overview: everything comes from one server-sent-events stream; search
// filters what is already here, the namespace filter asks the server.
"use strict";

(() => {
  const { h, fill, scheduleLink, badge, result, ago, duration } = JW;
  const nsSelect = document.getElementById("namespace");
  const search = document.getElementById("search");
  let latest = null;
  let source = null;
  // Rows drawn at first (unhealthiest first); the rest on request. Search covers them all.
  const FIRST_ROWS = 250;
  let showAll = false;
  const more = document.getElementById("show-all");
  more.addEventListener("click", () => { showAll = true; render(); });

  function matches(text) {
    const q = search.value.trim().toLowerCase();
    return !q || text.toLowerCase().includes(q);
  }

  function runCell(run) {
    return scheduleLink(run.namespace, run.schedule);
  }

  function render() {
    const data = latest;
    if (!data) return;
    JW.showError(data.error ? "Cannot follow the schedules: " + data.error : "");
    const known = new Set([...nsSelect.options].map((o) => o.value));
    for (const ns of data.namespaces) {
      if (!known.has(ns)) nsSelect.append(h("option", { value: ns, text: ns }));
    }
    document.getElementById("health").replaceChildren(...Object.entries(data.counts).map(
      ([state, count]) => h("li", { cls: "card h-" + state, "data-health": state },
        h("span", { cls: "count", text: count }), h("span", { text: state }))));

    const attention = data.attention.filter((a) => matches(`${a.namespace}/${a.name}`));
    fill(document.getElementById("attention"), attention.map((a) => h("tr", {},
      h("td", {}, scheduleLink(a.namespace, a.name)), h("td", {}, badge(a.state)),
      h("td", { text: a.reason || "" }), h("td", { text: a.consecutiveFailures }),
      h("td", { text: a.message || "" }))), "every schedule is healthy");

    const active = data.active.filter((r) => matches(`${r.namespace}/${r.schedule} ${r.job}`));
    fill(document.getElementById("active"), active.map((r) => {
      const share = r.elapsedSeconds === null ? 0 : r.elapsedSeconds / r.staleAfterSeconds;
      return h("tr", { cls: r.stale ? "stale" : "" },
        h("td", {}, runCell(r)), h("td", { text: r.job || "" }), h("td", { text: r.trigger || "" }),
        h("td", { text: r.elapsedSeconds === null ? "not started" : duration(r.elapsedSeconds) }),
        h("td", {}, h("progress", {
          max: 1, value: Math.min(1, share),
          "aria-label": `${Math.round(share * 100)}% of the ${duration(r.staleAfterSeconds)} stale threshold`,
        }), h("span", { cls: "muted", text: ` ${duration(r.elapsedSeconds)} of ${duration(r.staleAfterSeconds)}` + (r.stale ? " (stale)" : "") })));
    }), "no run is active");

    const stale = data.stale.filter((r) => matches(`${r.namespace}/${r.schedule} ${r.job}`));
    fill(document.getElementById("stale"), stale.map((r) => h("tr", {},
      h("td", {}, runCell(r)), h("td", { text: r.job || "" }), h("td", {}, result(r.result)),
      h("td", { text: ago(r.startTime, data.now) }), h("td", { text: r.reason || "" }))), "none");

    const failed = data.failed.filter((r) => matches(`${r.namespace}/${r.schedule} ${r.job}`));
    fill(document.getElementById("failed"), failed.map((r) => h("tr", {},
      h("td", {}, runCell(r)), h("td", { text: r.job || "" }), h("td", { text: r.trigger || "" }),
      h("td", { text: ago(r.completionTime || r.startTime, data.now) }),
      h("td", { text: r.reason || "" }))), "none");

    for (const section of ["active", "stale", "failed"]) {
      const total = data.totals[section];
      document.getElementById(section + "-count").textContent =
        total > data[section].length ? `(the ${data[section].length} most urgent of ${total})` : "";
    }

    const rows = data.schedules.filter((s) => matches(`${s.namespace}/${s.name} ${s.schedule}`));
    const drawn = showAll ? rows : rows.slice(0, FIRST_ROWS);
    fill(document.getElementById("schedules"), drawn.map((s) => h("tr", {
      "data-schedule": `${s.namespace}/${s.name}`, "data-last-result": s.lastResult || "",
      "data-version": s.version,
    },
      h("td", {}, scheduleLink(s.namespace, s.name)), h("td", { text: s.schedule }),
      h("td", {}, badge(s.health)), h("td", { text: (s.phase || "") + (s.suspended ? " (suspended)" : "") }),
      h("td", { text: s.active }), h("td", {}, result(s.lastResult)),
      h("td", { text: ago(s.lastRun, data.now) }), h("td", { text: ago(s.nextRun, data.now) }))),
      data.synced ? "no schedules" : "loading…");
    document.getElementById("shown").textContent = `(${drawn.length} of ${data.schedules.length})`;
    more.hidden = drawn.length === rows.length;
    more.textContent = `Show all ${rows.length} schedules`;
    if (!document.body.dataset.rendered && data.synced) {
      // For the benchmark: when the first full overview was built, and when it was painted.
      performance.mark("jw-first-render");
      requestAnimationFrame(() => requestAnimationFrame(() => performance.mark("jw-first-paint")));
    }
    document.body.dataset.rendered = String(Number(document.body.dataset.rendered || 0) + 1);
    document.body.dataset.synced = String(data.synced);
  }

  function connect() {
    if (source) source.close();
    const params = nsSelect.value ? { namespace: nsSelect.value } : {};
    source = JW.stream(params, { overview: (data) => { latest = data; render(); } });
  }

  const initial = new URLSearchParams(location.search).get("namespace");
  if (initial) nsSelect.append(h("option", { value: initial, text: initial, selected: true }));
  nsSelect.addEventListener("change", () => {
    const url = new URL(location.href);
    if (nsSelect.value) url.searchParams.set("namespace", nsSelect.value);
    else url.searchParams.delete("namespace");
    history.replaceState(null, "", url);
    connect();
  });
  search.addEventListener("input", render);
  connect();
})();
