// What the pages share: the API client (the staff key from the sign-in form), DOM helpers, the product card.
// Plain DOM, no framework and no third-party request: everything comes from this server's API.
"use strict";

const $ = (id) => document.getElementById(id);
const BEHAVIOR = { view: "viewed", click: "clicked", add_to_cart: "added to cart", remove_from_cart: "removed",
                   add_to_wishlist: "wishlisted", purchase: "bought" };
// The signal family a sales associate hears behind each reason code (hybrid blends: the largest share).
const CODE_SIGNAL = { similar_look: "visual", similar_description: "textual", shared_attributes: "attributes",
  similar_content: "content", co_chosen: "behaviors", collaborative: "behaviors", bought_together: "behaviors",
  sequence: "her journey", expert_mix: "her journey", trending: "trending", segment_popular: "her segment",
  bestseller: "best seller", not_personalised: "best seller", promotion: "featured",
  composed_search: "look and words" };
const SHARE_SIGNAL = { visual: "visual", textual: "textual", synergy: "look and copy", id: "behaviors",
  collaborative: "behaviors", demographic: "her segment", attributes: "attributes", recent: "recent behaviors",
  popularity: "popularity", recent_popularity: "trending", engagement: "her engagement" };
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

// A picture card: the piece, its price and line, the signal behind it, its reason; `actions`: buttons below.
function card(item, actions = []) {
  const r = item.reason;
  const promo = r.promotion ? [el("span", { class: "badge promo" }, `featured: ${r.promotion}`)] : [];
  return el("article", { class: "card", "data-product": item.product_id },
    el("img", { src: item.image_url || "", alt: item.title || item.product_id, loading: "lazy" }),
    el("h3", {}, item.title || item.product_id),
    el("span", { class: "price" }, `${money(item.price)} · ${item.collection || item.category || ""}`),
    el("span", { class: "badge", title: "the signal behind this piece" }, signalOf(r)),
    ...promo,
    el("p", { class: "reason" }, r.text),
    ...(actions.length ? [el("div", { class: "actions" }, ...actions)] : []));
}


// The staff sign-in form of every page: the key stays in this tab's session storage only.
function signIn(onSignedIn) {
  $("key-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem("vendome-key", $("key").value);
    $("key").value = "";
    say("Signed in.");
    onSignedIn();
  });
}
