// Shared by the dashboard's pages: building elements (text only, never HTML),
// the API calls with the session's CSRF header, the live stream, times, and
// the confirmation dialog. No framework, no build step, nothing from a CDN.
"use strict";

const JW = (() => {
  const csrf = document.querySelector('meta[name="jobwarden-csrf"]').content;

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") el.textContent = String(value);
      else if (key === "cls") el.className = value;
      else el.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  async function call(method, path, body) {
    const init = { method, credentials: "same-origin", headers: {} };
    if (method !== "GET") {
      init.headers["Content-Type"] = "application/json";
      init.headers["X-Jobwarden-CSRF"] = csrf;
      init.body = JSON.stringify(body || {});
    }
    const response = await fetch(path, init);
    let data;
    try {
      data = await response.json();
    } catch (_) {
      data = { error: `${response.status} ${response.statusText}` };
    }
    return { ok: response.ok, status: response.status, data };
  }

  function stream(params, handlers) {
    const live = document.getElementById("live");
    const source = new EventSource("/api/stream?" + new URLSearchParams(params));
    source.onopen = () => { if (live) live.textContent = "live"; };
    source.onerror = () => { if (live) live.textContent = "reconnecting…"; };
    for (const [name, handle] of Object.entries(handlers)) {
      source.addEventListener(name, (event) => handle(JSON.parse(event.data)));
    }
    return source;
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "";
    let s = Math.max(0, Math.round(seconds));
    const parts = [];
    for (const [unit, size] of [["y", 31536000], ["d", 86400], ["h", 3600], ["m", 60]]) {
      if (s >= size) { parts.push(Math.floor(s / size) + unit); s %= size; }
    }
    if (!parts.length || (parts.length < 2 && s)) parts.push(s + "s");
    return parts.slice(0, 2).join(" ");
  }

  function ago(iso, nowIso) {
    if (!iso) return "";
    const now = nowIso ? Date.parse(nowIso) : Date.now();
    const delta = (now - Date.parse(iso)) / 1000;
    return delta >= 0 ? duration(delta) + " ago" : "in " + duration(-delta);
  }

  function local(iso) {
    if (!iso) return "";
    return new Date(iso).toLocaleString(undefined, {
      weekday: "short", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", timeZoneName: "short",
    });
  }

  function fill(table, rows, empty) {
    const body = table.tBodies[0];
    const columns = table.tHead.rows[0].cells.length;
    body.replaceChildren(...(rows.length ? rows
      : [h("tr", { cls: "empty" }, h("td", { colspan: columns, text: empty || "none" }))]));
  }

  function scheduleLink(namespace, name) {
    const path = `/schedules/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`;
    return h("a", { href: path }, h("span", { cls: "ns", text: namespace + "/" }), name);
  }

  function badge(state) {
    return h("span", { cls: "badge h-" + (state || "Unknown"), text: state || "Unknown" });
  }

  function result(value) {
    return value ? h("span", { cls: "result r-" + value, text: value }) : "";
  }

  function confirm(text) {
    const dialog = document.getElementById("confirm");
    document.getElementById("confirm-text").textContent = text;
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
      dialog.returnValue = "cancel";
      dialog.showModal();
    });
  }

  function showError(message) {
    const box = document.getElementById("error");
    if (!box) return;
    box.hidden = !message;
    box.textContent = message || "";
  }

  return { h, call, stream, duration, ago, local, fill, scheduleLink, badge, result, confirm, showError };
})();

// The page's own link in the navigation.
for (const link of document.querySelectorAll(".top nav a")) {
  if (link.getAttribute("href") === location.pathname) link.setAttribute("aria-current", "page");
}
