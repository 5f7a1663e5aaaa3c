// The compose form: every change asks the server for the YAML and the next
// runs (the preview engine lives there, once); applying is its own button.
"use strict";

(() => {
  const { h, fill, local } = JW;
  const form = document.getElementById("form");
  const preset = document.getElementById("f-preset");
  let latestYaml = "";
  let pending = null;
  let asked = 0;

  for (const zone of (Intl.supportedValuesOf ? Intl.supportedValuesOf("timeZone") : [])) {
    document.getElementById("zones").append(h("option", { value: zone }));
  }

  function values() {
    const data = {};
    for (const el of form.elements) {
      if (!el.name) continue;
      if (el.type === "checkbox") {
        data[el.name] = data[el.name] || [];
        if (el.checked) data[el.name].push(el.value);
      } else {
        data[el.name] = el.value;
      }
    }
    return data;
  }

  function showPreset() {
    for (const el of form.querySelectorAll("[data-presets]")) {
      el.hidden = !el.dataset.presets.split(" ").includes(preset.value);
    }
  }

  async function refresh() {
    const ticket = ++asked;
    const { ok, data } = await JW.call("POST", "/api/compose", values());
    if (ticket !== asked) return; // an older answer arriving late
    const error = document.getElementById("compose-error");
    error.hidden = ok && !data.error;
    error.textContent = ok ? data.error || "" : data.error || "preview failed";
    document.getElementById("description").textContent = data.description || "";
    fill(document.getElementById("preview"), (data.runs || []).map((r, i) => h("tr", {},
      h("td", { text: i + 1 }), h("td", { cls: "utc", text: r.utc }), h("td", { text: r.local + (r.note ? ` (${r.note})` : "") }),
      h("td", { text: local(r.utc) }))), data.error ? "fix the form to see runs" : "no runs");
    latestYaml = data.yaml || "";
    document.getElementById("yaml").textContent = latestYaml;
    document.body.dataset.previewed = String(ticket);
  }

  function soon() {
    clearTimeout(pending);
    pending = setTimeout(refresh, 200);
  }

  form.addEventListener("input", soon);
  form.addEventListener("change", soon);
  form.addEventListener("submit", (event) => event.preventDefault());
  preset.addEventListener("change", showPreset);

  document.getElementById("copy").addEventListener("click", async () => {
    const out = document.getElementById("apply-result");
    try {
      await navigator.clipboard.writeText(latestYaml);
      out.textContent = "YAML copied.";
    } catch (_) {
      out.textContent = "Copying is not allowed here: select the YAML and copy it.";
    }
  });
  document.getElementById("download").addEventListener("click", () => {
    const link = h("a", {
      href: URL.createObjectURL(new Blob([latestYaml], { type: "application/yaml" })),
      download: `${form.elements.name.value || "schedule"}.yaml`,
    });
    document.body.append(link);
    link.click();
    link.remove();
  });
  document.getElementById("apply").addEventListener("click", async () => {
    if (!(await JW.confirm("Apply this schedule to the cluster now, as you (server-side apply)?"))) return;
    const out = document.getElementById("apply-result");
    const { ok, data } = await JW.call("POST", "/api/apply", values());
    if (ok) {
      out.replaceChildren(h("p", { cls: "ok" }, data.message + " — ",
        JW.scheduleLink(data.namespace, data.name)));
    } else {
      out.replaceChildren(h("div", { cls: "alert refusal", role: "alert" },
        h("strong", { text: "Refused: " }), data.error || ""));
    }
  });

  showPreset();
  refresh();
})();
