// One schedule: the server sends the whole page's data on every change of
// the object (one stream), and the actions are POSTs made as the user.
"use strict";

(() => {
  const { h, fill, badge, result, ago, duration, local } = JW;
  const [, , namespace, name] = location.pathname.split("/").map(decodeURIComponent);
  const SVG = "http://www.w3.org/2000/svg";
  document.getElementById("title").append(h("span", { cls: "ns", text: namespace + "/" }), name);
  document.title = `jobwarden: ${namespace}/${name}`;

  function svg(tag, attrs, label) {
    const el = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
    if (label) {
      const title = document.createElementNS(SVG, "title");
      title.textContent = label;
      el.append(title);
    }
    return el;
  }

  function drawTimeline(timeline) {
    const box = document.getElementById("timeline");
    if (!timeline.bars.length) {
      box.replaceChildren(h("p", { cls: "muted", text: "no runs yet" }));
      return;
    }
    const width = 1000, height = 48;
    const chart = svg("svg", {
      viewBox: `0 0 ${width} ${height + 16}`, preserveAspectRatio: "none", role: "img",
      "aria-label": `${timeline.bars.length} runs from ${timeline.start} to ${timeline.end}`,
    });
    chart.append(svg("line", { x1: 0, x2: width, y1: height, y2: height, class: "axis" }));
    for (const bar of timeline.bars) {
      const x = bar.x * width;
      const label = `${bar.job || "run"}: ${bar.result}, ${local(bar.start)}` +
        (bar.gap ? "" : `, ${duration(bar.durationSeconds)}`);
      if (bar.gap) {
        chart.append(svg("rect", { x: x - 1, y: 4, width: 2, height: height - 8, class: "gap" }, label));
      } else {
        const w = Math.max(3, bar.width * width);
        chart.append(svg("rect", { x, y: 8, width: w, height: height - 16, class: "bar r-" + bar.result, "data-job": bar.job || "" }, label));
      }
    }
    chart.append(svg("text", { x: 0, y: height + 14, class: "tick" }, null));
    chart.lastChild.textContent = local(timeline.start);
    chart.append(svg("text", { x: width, y: height + 14, class: "tick end" }, null));
    chart.lastChild.textContent = "now";
    box.replaceChildren(chart);
  }

  function render(data) {
    JW.showError("");
    document.getElementById("badge").replaceChildren(badge(data.row.health));
    const words = document.getElementById("words");
    words.replaceChildren(...data.words.flatMap(([k, v]) => [h("dt", { text: k }), h("dd", { text: v })]));
    if (data.heldByOperator) {
      words.append(h("dt", { text: "Held by the operator" }), h("dd", { text: `${data.heldByOperator.reason || ""} ${data.heldByOperator.message || ""}` }));
    }
    document.getElementById("zone-head").textContent = data.zone || "Schedule's time zone";
    document.getElementById("next-note").textContent = data.nextRunsNote || "";
    fill(document.getElementById("next"), data.nextRuns.map((r, i) => h("tr", {},
      h("td", { text: i + 1 }), h("td", { text: r.utc }), h("td", { text: (r.local || "") + (r.note ? ` (${r.note})` : "") }),
      h("td", { text: local(r.utc) }))), "no more scheduled runs");
    drawTimeline(data.timeline);
    fill(document.getElementById("history"), data.history.map((e) => h("tr", { "data-job": e.job || "" },
      h("td", { text: e.job || "" }), h("td", { text: e.trigger || "" }),
      h("td", { text: e.scheduledTime || "" }), h("td", { text: ago(e.startTime) }),
      h("td", { text: duration(e.durationSeconds) }), h("td", {}, result(e.result)),
      h("td", { text: e.reason || "" }))), "no runs yet");
    fill(document.getElementById("conditions"), data.conditions.map((c) => h("tr", {},
      h("td", { text: c.type }), h("td", { text: c.status }), h("td", { text: c.reason || "" }),
      h("td", { text: ago(c.lastTransitionTime) }), h("td", { text: c.message || "" }))), "none");
    document.getElementById("events-note").textContent = data.eventsNote || "";
    fill(document.getElementById("events"), (data.events || []).map((row) => h("tr", {},
      ...row.map((cell) => h("td", { text: cell ?? "" })))), data.eventsNote ? "unavailable" : "none");
    document.getElementById("yaml").textContent = data.yaml;
    document.getElementById("act-suspend").hidden = data.row.suspended;
    document.getElementById("act-resume").hidden = !data.row.suspended;
    document.body.dataset.version = data.row.version;
  }

  for (const button of document.querySelectorAll("button[data-action]")) {
    button.addEventListener("click", async () => {
      if (!(await JW.confirm(button.dataset.confirm))) return;
      const out = document.getElementById("action-result");
      out.replaceChildren(h("span", { cls: "muted", text: "…" }));
      const path = `/api/schedules/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}/actions/${button.dataset.action}`;
      const { ok, data } = await JW.call("POST", path);
      if (ok) {
        out.replaceChildren(h("p", { cls: "ok", id: "action-ok", text: data.message }));
      } else {
        out.replaceChildren(h("div", { cls: "alert refusal", id: "action-refused", role: "alert" },
          h("strong", { text: "Refused: " }), data.error || "",
          data.server && data.server !== data.error
            ? h("p", {}, h("span", { cls: "muted", text: "API server: " }), h("span", { cls: "server", text: data.server }))
            : null));
      }
    });
  }

  JW.stream({ namespace, name }, {
    schedule: render,
    gone: () => JW.showError(`${namespace}/${name} no longer exists.`),
  });
  JW.call("GET", `/api/schedules/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`)
    .then(({ ok, data }) => (ok ? render(data) : JW.showError(data.error)));
})();
