// The clienteling page: find a client, read her profile and journey, show her recommendations with their
// reasons, log what happens in the boutique ("shown to client", "client liked") as events, and search from any
// piece with words ("like this, but in rose gold, no diamonds"): a planner session keeps the piece, the earlier
// refinements and the pieces she turned down, so "cheaper" or "not this one" refine the last answer.
// Helpers (api, el, card, signIn) are in common.js.
"use strict";

let current = null;
let anchor = null;      // the piece the composed search starts from
let session = null;     // the planner session of the composed search in progress

async function log(item, type, label) {
  try {
    await api("/v1/events", { method: "POST", body: JSON.stringify({ customer_id: current,
      product_id: item.product_id, interaction_type: type, referrer_source: "clienteling", device_type: "tablet" }) });
    say(`${label}: ${item.title} logged. Her recommendations are refreshed.`);
    await Promise.all([showRecs(current), showJourney(current)]);
  } catch (e) { say(e.message, true); }
}

function told(m) {
  if (!m || (!m.loves.length && !m.avoids.length)) return "—";
  const parts = [m.loves.length ? `loves ${m.loves.join(", ")}` : "", m.avoids.length ? `avoids ${m.avoids.join(", ")}` : ""];
  return `${parts.filter(Boolean).join("; ")} (from ${m.texts} review${m.texts === 1 ? "" : "s"} and notes)`;
}

function profile(p) {
  const rows = [["Segment", p.segment], ["City", [p.city, p.country].filter(Boolean).join(", ")],
    ["Says she prefers", [...p.stated.categories, ...p.stated.materials].join(", ") || "—"],
    ["Her events show", [...p.observed.categories, ...p.observed.materials].join(", ") || "—"],
    ["She told us", told(p.motivations)],
    ["Price tiers", p.price_band ? `${p.price_band.lowest} to ${p.price_band.highest} (0 entry, 3 top)` : "not yet known"],
    ["Personalisation", p.consent.personalised ? "on" : "off (she opted out)"],
    ["Marketing e-mails", p.consent.marketing === null ? "unknown" : p.consent.marketing ? "yes" : "no"],
    ["Last seen", p.last_seen ? new Date(p.last_seen).toLocaleDateString("en-GB") : "—"]];
  const dl = el("dl");
  for (const [k, v] of rows) dl.append(el("dt", {}, k), el("dd", {}, v || "—"));
  $("profile").replaceChildren(el("h2", { id: "client-title" }, `Client ${p.customer_id}`), dl);
}

async function showRecs(id) {
  const recs = await api(`/v1/customers/${encodeURIComponent(id)}/recommendations?placement=home&k=8`);
  $("recs-model").textContent = `by ${recs.model}${recs.personalised ? "" : " (not personalised)"}`;
  $("recs").replaceChildren(...recs.items.map((item) => card(item, [
    el("button", { type: "button", class: "secondary", onclick: () => log(item, "view", "Shown to client") },
       "Shown to client"),
    el("button", { type: "button", onclick: () => log(item, "add_to_wishlist", "Client liked") }, "Client liked"),
    refineButton(item),
  ])));
}

// ------------------------------------------------------------------ composed search
function refineButton(item) {
  return el("button", { type: "button", class: "secondary refine", onclick: () => refineFrom(item) },
            "Refine from this");
}

function refineFrom(item) {
  anchor = item;
  session = null;
  $("anchor").replaceChildren(el("img", { src: item.image_url || "", alt: "" }),
    el("span", {}, "Starting from ", el("strong", {}, item.title || item.product_id), ` (${money(item.price)})`));
  $("ask").focus();
  say(`Starting from ${item.title}. Say what she would change.`);
}

function resetCompose() {
  anchor = null;
  session = null;
  $("anchor").replaceChildren(el("span", { class: "muted" }, "No piece chosen: the words alone search the catalog."));
  for (const id of ["constraints", "found"]) $(id).replaceChildren();
  $("answer").textContent = "";
  $("ask").value = "";
}

function chip(c) {
  const value = Array.isArray(c.value) ? c.value.join(", ") : typeof c.value === "number" ? money(c.value) : c.value;
  const words = { in: "", not_in: "not ", lt: "under ", le: "at most ", gt: "over ", ge: "from ", between: "" };
  return el("li", { class: c.hard ? "hard" : "soft", title: c.hard ? "never broken" : "a preference" },
            `${c.attribute.replace("_type", "")}: ${words[c.op] ?? c.op + " "}${value}`);
}

let composing = 0;       // likewise for composed searches: only the newest answer is shown
async function compose(text, reject = []) {
  const mine = ++composing;
  try {
    const body = { text, customer_id: current, k: 8, planner: true, reject,
                   ...(session ? { session_id: session } : { anchor: anchor ? anchor.product_id : null }) };
    const found = await api("/v1/search", { method: "POST", body: JSON.stringify(body) });
    if (mine !== composing) return;
    session = found.session_id;
    $("constraints").replaceChildren(...found.constraints.map(chip));
    $("answer").textContent = found.answer || "";
    $("found").replaceChildren(...found.items.map((item) => card(item, [
      el("button", { type: "button", onclick: () => log(item, "add_to_wishlist", "Client liked") }, "Client liked"),
      el("button", { type: "button", class: "secondary", onclick: () => compose("", [item.product_id]) },
         "Not this one"),
      refineButton(item),
    ])));
    say(found.items.length ? `${found.items.length} pieces found.` : "Nothing meets every constraint.");
  } catch (e) { say(e.message, true); }
}

async function showJourney(id) {
  const j = await api(`/v1/customers/${encodeURIComponent(id)}/journey?limit=24`);
  $("journey-count").textContent = `last ${j.steps.length} of ${j.events} events`;
  $("journey").replaceChildren(...j.steps.map((s) => el("li", { class: s.behavior },
    el("img", { src: s.image_url || "", alt: s.title || s.product_id, loading: "lazy" }),
    el("span", { class: "what" }, BEHAVIOR[s.behavior] || s.behavior),
    el("span", {}, s.title || s.product_id), el("br"),
    el("time", { datetime: s.at }, s.at ? new Date(s.at).toLocaleDateString("en-GB") : ""))));
}

async function open(id) {
  try {
    current = id;
    resetCompose();
    for (const b of document.querySelectorAll(".results button")) b.setAttribute("aria-current", b.dataset.id === id);
    profile(await api(`/v1/customers/${encodeURIComponent(id)}`));
    await Promise.all([showRecs(id), showJourney(id)]);
    $("client").hidden = false;
    history.replaceState(null, "", `?customer=${encodeURIComponent(id)}`);
    say(`Client ${id} opened.`);
  } catch (e) { say(e.message, true); }
}

let searches = 0;        // a slower, older search must not overwrite the answer to the newest one
async function search(query) {
  const mine = ++searches;
  try {
    const found = await api(`/v1/customers?q=${encodeURIComponent(query)}&limit=12`);
    if (mine !== searches) return;
    $("results").replaceChildren(...found.map((c) => el("li", {}, el("button", { type: "button", "data-id": c.customer_id,
      onclick: () => open(c.customer_id) }, `${c.customer_id} · ${c.segment || ""} · ${c.city || ""}`))));
    say(found.length ? `${found.length} clients found.` : "No client matches.");
  } catch (e) { say(e.message, true); }
}

signIn(() => search($("query").value));
$("search-form").addEventListener("submit", (ev) => { ev.preventDefault(); search($("query").value); });
$("compose-form").addEventListener("submit", (ev) => { ev.preventDefault(); compose($("ask").value); });
$("compose-reset").addEventListener("click", resetCompose);
const wanted = new URLSearchParams(location.search).get("customer");
if (key()) { search(""); if (wanted) open(wanted); } else say("Sign in with the staff key to find a client.");
