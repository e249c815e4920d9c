// The model and evaluation page: model versions (activate, roll back), the offline metrics and plots of the latest
// evaluation report, and each experiment's uplift with its 95% interval. Helpers are in common.js.
"use strict";

const pct = (x) => (x === null || x === undefined ? "—" : `${(100 * x).toFixed(1)}%`);
const num = (x, d = 4) => (x === null || x === undefined ? "—" : Number(x).toFixed(d));

async function models() {
  const list = await api("/v1/models");
  $("models").tBodies[0].replaceChildren(...list.map((m) => {
    const active = m.versions.find((v) => v.version === m.active) || {};
    return el("tr", { class: m.serving ? "serving" : "" },
      el("th", { scope: "row" }, m.name + (m.serving ? " (served)" : "")),
      el("td", {}, m.active || "—"), el("td", {}, active.fitted_at ? active.fitted_at.slice(0, 16).replace("T", " ") : "—"),
      el("td", {}, String(m.versions.length)),
      el("td", {}, m.versions.length > 1
        ? el("button", { type: "button", class: "secondary", onclick: () => rollback(m.name) }, `Roll back ${m.name}`)
        : "—"));
  }));
}

async function rollback(name) {
  try {
    const r = await api(`/v1/models/${encodeURIComponent(name)}/rollback`, { method: "POST" });
    say(`${name}: version ${r.active} is active${r.serving ? " and served" : ""}.`);
    await models();
  } catch (e) { say(e.message, true); }
}

async function reports() {
  const list = await api("/v1/reports");
  if (!list.length) { $("report-meta").textContent = "(no report yet: run vendome evaluate)"; return; }
  const r = list[0];
  $("report-meta").textContent = `${r.name}: ${r.protocol} protocol, ${r.dataset || ""}, ${(r.generated_at || "").slice(0, 10)}`;
  if (r.html) $("report-link").href = r.html; else $("report-link").hidden = true;
  const rows = Object.entries(r.models).sort((a, b) => (b[1]["ndcg@10"] ?? 0) - (a[1]["ndcg@10"] ?? 0));
  $("metrics").tBodies[0].replaceChildren(...rows.map(([name, m]) => el("tr", { class: name === r.best ? "best" : "" },
    el("th", { scope: "row" }, name), el("td", {}, num(m["ndcg@10"])), el("td", {}, num(m["hr@10"])),
    el("td", {}, pct(m["coverage@10"])), el("td", {}, String(m.guardrail_violations ?? "—")))));
  const charts = await api(`/v1/reports/${encodeURIComponent(r.name)}/charts`);
  $("charts").replaceChildren(...charts.map((c) => el("figure", {},
    el("img", { src: c.url, alt: `${r.name}: ${c.title}`, loading: "lazy" }), el("figcaption", {}, c.title))));
}

function interval(c) {
  if (!c || c.relative === null) return "—";
  const ci = c.relative_ci95 ? ` [${pct(c.relative_ci95[0])}, ${pct(c.relative_ci95[1])}]` : "";
  return `${c.relative >= 0 ? "+" : ""}${pct(c.relative)}${ci}${c.p_value !== null ? `, p = ${c.p_value.toFixed(3)}` : ""}`;
}

async function experiments() {
  const list = await api("/v1/experiments");
  if (!list.length) { $("experiments").replaceChildren(el("p", {}, "No experiment is configured.")); return; }
  const blocks = [];
  for (const x of list) {
    let body;
    try {
      const rep = await api(`/v1/experiments/${encodeURIComponent(x.name)}/report`);
      const table = el("table", {}, el("caption", {}, `${x.name}: ${rep.visitors} visitors, control ${rep.control}`),
        el("thead", {}, el("tr", {}, ...["Arm", "Model", "Visitors", "Conversion", "vs control (95% CI)",
                                         "Revenue per visitor", "vs control (95% CI)"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, ...rep.arms.map((a) => el("tr", {}, el("th", { scope: "row" }, a.arm), el("td", {}, a.model),
          el("td", {}, String(a.visitors)), el("td", {}, pct(a.conversion_rate)),
          el("td", {}, interval(a.vs_control && a.vs_control.conversion_rate)),
          el("td", {}, num(a.revenue_per_visitor, 2)),
          el("td", {}, interval(a.vs_control && a.vs_control.revenue_per_visitor))))));
      body = [table, ...rep.warnings.map((w) => el("p", { class: "problems" }, w))];
    } catch (e) { body = [el("p", {}, `${x.name}: ${e.message}`)]; }
    blocks.push(el("div", { class: "experiment" }, ...body));
  }
  $("experiments").replaceChildren(...blocks);
}

async function load() {
  try { await Promise.all([models(), reports(), experiments()]); say("Models, evaluation and experiments loaded."); }
  catch (e) { say(e.message, true); }
}

signIn(load);
if (key()) load(); else { models().catch(() => {}); reports().catch(() => {}); say("Sign in with the staff key for experiments."); }
