// The clienteling page: find a client, read her profile and journey, show her recommendations with their
// reasons, and log what happens in the boutique ("shown to client", "client liked") as events.
// Plain DOM, no framework and no third-party request: everything comes from this server's API.
"use strict";

const $ = (id) => document.getElementById(id);
const BEHAVIOR = { view: "viewed", click: "clicked", add_to_cart: "added to cart", remove_from_cart: "removed",
                   add_to_wishlist: "wishlisted", purchase: "bought" };
// The signal family a sales associate hears behind each reason code (hybrid blends: the largest share).
const CODE_SIGNAL = { similar_look: "visual", similar_description: "textual", shared_attributes: "attributes",
  similar_content: "content", co_chosen: "behaviors", collaborative: "behaviors", bought_together: "behaviors",
  sequence: "her journey", expert_mix: "her journey", trending: "trending", segment_popular: "her segment",
  bestseller: "best seller", not_personalised: "best seller", promotion: "featured" };
const SHARE_SIGNAL = { visual: "visual", textual: "textual", synergy: "look and copy", id: "behaviors",
  collaborative: "behaviors", demographic: "her segment", attributes: "attributes", recent: "recent behaviors",
  popularity: "popularity", recent_popularity: "trending", engagement: "her engagement" };
let current = null;

function key() { return sessionStorage.getItem("vendome-key") || ""; }

async function api(path, options = {}) {
  const headers = { "X-API-Key": key(), ...(options.body ? { "Content-Type": "application/json" } : {}) };
  const r = await fetch(path, { ...options, headers });
  if (!r.ok) {
    let detail = r.statusText;
    try { detail = (await r.json()).detail; } catch (_) { /* not JSON */ }
    throw new Error(r.status === 401 ? "Sign in with the staff key first." : `${r.status}: ${detail}`);
  }
  return r.json();
}

function say(text, error = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
  return node;
}

function money(x) { return new Intl.NumberFormat("en", { style: "currency", currency: "EUR",
                                                         maximumFractionDigits: 0 }).format(x); }

// The signal behind a reason: for a blend (several "<part>_share" signals) its largest part, else its code.
function signalOf(reason) {
  const shares = Object.entries(reason.signals || {}).filter(([k]) => k.endsWith("_share"))
    .sort((a, b) => b[1] - a[1]);
  if (shares.length > 1) {
    const [name, share] = shares[0];
    const part = name.replace(/_share$/, "");
    return `${SHARE_SIGNAL[part] || part.replace(/_/g, " ")} ${Math.round(share * 100)}%`;
  }
  return CODE_SIGNAL[reason.code] || (reason.code || "").replace(/_/g, " ");
}

function card(item) {
  const r = item.reason;
  return el("article", { class: "card", "data-product": item.product_id },
    el("img", { src: item.image_url || "", alt: item.title || item.product_id, loading: "lazy" }),
    el("h3", {}, item.title || item.product_id),
    el("span", { class: "price" }, `${money(item.price)} · ${item.collection || item.category || ""}`),
    el("span", { class: "badge", title: "the signal behind this piece" }, signalOf(r)),
    el("p", { class: "reason" }, r.text),
    el("div", { class: "actions" },
      el("button", { type: "button", class: "secondary", onclick: () => log(item, "view", "Shown to client") },
         "Shown to client"),
      el("button", { type: "button", onclick: () => log(item, "add_to_wishlist", "Client liked") },
         "Client liked")));
}

async function log(item, type, label) {
  try {
    await api("/v1/events", { method: "POST", body: JSON.stringify({ customer_id: current,
      product_id: item.product_id, interaction_type: type, referrer_source: "clienteling", device_type: "tablet" }) });
    say(`${label}: ${item.title} logged. Her recommendations are refreshed.`);
    await Promise.all([showRecs(current), showJourney(current)]);
  } catch (e) { say(e.message, true); }
}

function profile(p) {
  const rows = [["Segment", p.segment], ["City", [p.city, p.country].filter(Boolean).join(", ")],
    ["Says she prefers", [...p.stated.categories, ...p.stated.materials].join(", ") || "—"],
    ["Her events show", [...p.observed.categories, ...p.observed.materials].join(", ") || "—"],
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
  $("recs").replaceChildren(...recs.items.map(card));
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
    for (const b of document.querySelectorAll(".results button")) b.setAttribute("aria-current", b.dataset.id === id);
    profile(await api(`/v1/customers/${encodeURIComponent(id)}`));
    await Promise.all([showRecs(id), showJourney(id)]);
    $("client").hidden = false;
    history.replaceState(null, "", `?customer=${encodeURIComponent(id)}`);
    say(`Client ${id} opened.`);
  } catch (e) { say(e.message, true); }
}

async function search(query) {
  try {
    const found = await api(`/v1/customers?q=${encodeURIComponent(query)}&limit=12`);
    $("results").replaceChildren(...found.map((c) => el("li", {}, el("button", { type: "button", "data-id": c.customer_id,
      onclick: () => open(c.customer_id) }, `${c.customer_id} · ${c.segment || ""} · ${c.city || ""}`))));
    say(found.length ? `${found.length} clients found.` : "No client matches.");
  } catch (e) { say(e.message, true); }
}

$("key-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem("vendome-key", $("key").value);
  $("key").value = "";
  say("Signed in.");
  search($("query").value);
});
$("search-form").addEventListener("submit", (ev) => { ev.preventDefault(); search($("query").value); });
const wanted = new URLSearchParams(location.search).get("customer");
if (key()) { search(""); if (wanted) open(wanted); } else say("Sign in with the staff key to find a client.");
