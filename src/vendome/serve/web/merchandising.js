// The merchandising page: the guardrail file in force (read, edit, validate, save: the API refuses a file with
// any problem and keeps the one in force), and a preview of a client's placement with and without the rules,
// a draft file included. Helpers (api, el, card, signIn) are in common.js.
"use strict";

let draft = null;                   // the rules text of the last "preview with this draft"

async function loadRules() {
  const r = await api("/v1/rules");
  $("rules").value = r.yaml;
  $("rules-source").textContent = r.source.split("/").pop();
}

function problems(list) {
  $("problems").replaceChildren(...list.map((p) => el("li", {}, typeof p === "string" ? p : JSON.stringify(p))));
}

async function saveRules(ev) {
  ev.preventDefault();
  try {
    const r = await fetch("/v1/rules", { method: "PUT", headers: { "X-API-Key": key(),
      "Content-Type": "application/json" }, body: JSON.stringify({ yaml: $("rules").value }) });
    const body = await r.json();
    if (r.status === 422) {
      problems(Array.isArray(body.detail) ? body.detail : [body.detail]);
      say("Not saved: the file has problems (listed above). The rules in force are unchanged.", true);
      return;
    }
    if (!r.ok) throw new Error(r.status === 401 ? "Sign in with the staff key first." : body.detail);
    problems([]);
    draft = null;
    say("Saved: these rules are now in force.");
    if ($("customer").value) await preview();
  } catch (e) { say(e.message, true); }
}

async function preview(ev) {
  if (ev) ev.preventDefault();
  try {
    const body = { customer_id: $("customer").value, placement: $("placement").value, k: 10,
                   ...(draft !== null ? { yaml: draft } : {}) };
    const r = await api("/v1/rules/preview", { method: "POST", body: JSON.stringify(body) });
    $("with-note").textContent = draft !== null ? "(the draft, not saved)" : "(in force)";
    $("with").replaceChildren(...r.with_rules.items.map((i) => card(i)));
    $("without").replaceChildren(...r.without_rules.items.map((i) => card(i)));
    problems([]);
    say(`Preview for ${r.customer_id} on the ${r.placement} placement.`);
  } catch (e) { say(e.message, true); }
}

$("rules-form").addEventListener("submit", saveRules);
$("preview-form").addEventListener("submit", preview);
$("try-draft").addEventListener("click", async () => {
  draft = $("rules").value;
  if (!$("customer").value) { say("Enter a client id to preview the draft."); return; }
  try { await preview(); } catch (e) { say(e.message, true); }
});
signIn(loadRules);
if (key()) loadRules().catch((e) => say(e.message, true)); else say("Sign in with the staff key.");
