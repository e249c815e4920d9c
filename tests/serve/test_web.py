"""The clienteling page in a real browser (Debian's headless chromium, driven by Playwright): a sales associate
signs in, finds a demo client, reads her journey and her recommendations with pictures and reasons, logs "client
liked" and sees her recommendations change. Screenshots go to VENDOME_ARTIFACTS (default: the test's tmp dir)."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
import uvicorn

from serve.copies import KNN_VS_POP, trained_service
from vendome.artifacts import active_version, versions
from vendome.data import store
from vendome.pipeline import evaluate_workspace
from vendome.serve.app import create_app

KEY = "web-staff-key"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

if not Path(CHROMIUM).exists():
    if os.environ.get("VENDOME_SKIP_BROWSER") == "1":
        pytest.skip("VENDOME_SKIP_BROWSER=1 and no chromium", allow_module_level=True)
    raise RuntimeError("the browser tests need Debian's chromium: `make browser` (apt-get install chromium)")

sync_api = pytest.importorskip("playwright.sync_api")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def site(boutique_ws, tmp_path_factory):
    ws, svc = trained_service(boutique_ws, tmp_path_factory.mktemp("web") / "ws", versions=2)  # one to roll back to
    reports = ws.root / "reports"
    evaluate_workspace(ws, ["pop", "itemknn"], "temporal", data=svc.data, json_path=reports / "small_temporal.json",
                       html_path=reports / "small_temporal.html")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(ws, api_key=KEY, svc=svc), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", svc
    server.should_exit = True
    thread.join(10)
    store.writer(ws).close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def artifacts(tmp_path) -> Path:
    out = Path(os.environ.get("VENDOME_ARTIFACTS", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    return out


def signed_in(browser, base: str):
    page = browser.new_page(viewport={"width": 1180, "height": 820})          # a landscape tablet
    outside = []
    page.on("request", lambda r: None if r.url.startswith(base) or r.url.startswith("data:") else outside.append(r.url))
    page.goto(f"{base}/app")
    page.get_by_label("Staff key").fill(KEY)
    page.get_by_role("button", name="Sign in").click()
    return page, outside


def client_page(browser, base: str, client: str):
    """The clienteling page of one client, signed in, once her recommendations are on it: (page, outside)."""
    page, outside = signed_in(browser, base)
    page.goto(f"{base}/app/clienteling.html?customer={client}")
    page.locator("#recs .card").first.wait_for()
    return page, outside


def cards(page) -> list[tuple[str, str]]:
    return [(c.get_attribute("data-product"), c.locator(".reason").inner_text())
            for c in page.locator("#recs .card").all()]


def test_a_sales_associate_finds_a_client_and_reads_her_journey_and_recommendations(site, browser, artifacts):
    base, svc = site
    client = svc._clients_by_recency()[0]
    page, outside = signed_in(browser, base)
    page.get_by_label("Client id, city, country or segment").fill(client)
    page.get_by_role("button", name="Search").click()
    page.get_by_role("button", name=client).first.click()
    page.locator("#recs .card").first.wait_for()
    page.wait_for_load_state("networkidle")
    assert page.locator("#client-title").inner_text() == f"Client {client}"
    told = svc.motivations(svc.data.user_index[client])
    row = page.locator("#profile dt", has_text="She told us").locator("xpath=following-sibling::dd[1]").inner_text()
    assert row == "—" if not told["loves"] + told["avoids"] else all(x in row for x in told["loves"] + told["avoids"])
    steps = page.locator("#journey li")
    assert steps.count() > 0
    recs = page.locator("#recs .card")
    assert recs.count() == 8
    for c in recs.all():
        assert c.locator(".reason").inner_text().strip()                       # a reason on every card
        assert c.locator(".badge").inner_text().strip()                        # and the signal behind it
    page.evaluate("() => window.scrollTo(0, document.body.scrollHeight)")   # the journey's pictures load lazily
    page.wait_for_function("() => [...document.querySelectorAll('#recs img, #journey img')]"
                           ".every(i => i.complete && i.naturalWidth > 0)")          # pictures from the workspace
    assert page.locator("#recs img, #journey img").count() == 8 + steps.count()
    page.evaluate("() => window.scrollTo(0, 0)")
    assert outside == []                                                       # nothing from another origin
    page.screenshot(path=str(artifacts / "clienteling.png"), full_page=True)
    page.close()


def test_logging_client_liked_changes_her_next_recommendations(site, browser, artifacts):
    base, svc = site
    client = svc._clients_by_recency()[2]
    page, _ = client_page(browser, base, client)
    before = cards(page)
    liked = before[0][0]
    page.locator("#recs .card").first.get_by_role("button", name="Client liked").click()
    page.wait_for_function("() => document.getElementById('status').textContent.includes('logged')")
    page.wait_for_load_state("networkidle")
    after = cards(page)
    assert after != before
    assert "wishlisted" in page.locator("#journey li").last.inner_text()       # the newest step of her journey
    events = svc.events.for_customer(client)
    assert liked in set(events["product_id"]) and "add_to_wishlist" in set(events["interaction_type"])
    page.screenshot(path=str(artifacts / "clienteling-after-like.png"), full_page=True)
    page.close()


def test_a_composed_search_refines_from_a_card_and_forgets_a_rejected_piece(site, browser, artifacts):
    base, svc = site
    client = svc._clients_by_recency()[0]
    page, outside = client_page(browser, base, client)
    anchor = page.locator("#recs .card").first.get_attribute("data-product")
    page.locator("#recs .card").first.get_by_role("button", name="Refine from this").click()
    assert page.evaluate("() => document.activeElement.id") == "ask"             # ready for her words
    facts = svc.data.products.set_index("product_id")
    stone = facts.loc[anchor, "stone_type"]
    excluded = "diamond" if stone != "diamond" else "pearl"
    page.get_by_label("What she would change").fill(f"like this, but in rose gold, no {excluded}s")
    page.get_by_role("button", name="Find pieces").click()
    page.locator("#found .card").first.wait_for()
    page.wait_for_load_state("networkidle")
    found = [c.get_attribute("data-product") for c in page.locator("#found .card").all()]
    assert found and anchor not in found
    assert all(facts.loc[p, "stone_type"] != excluded for p in found)          # the negation holds on every card
    chips = page.locator("#constraints li.hard").all_inner_texts()
    assert any(f"not {excluded}" in c for c in chips)
    assert page.locator("#answer").inner_text().strip()                        # the planner says what it did
    for c in page.locator("#found .card").all():
        assert c.locator(".reason").inner_text().strip() and c.locator(".badge").inner_text().strip()
    page.wait_for_function("() => [...document.querySelectorAll('#found img')]"
                           ".every(i => i.complete && i.naturalWidth > 0)")
    page.locator("section.compose").screenshot(path=str(artifacts / "composed-search.png"))
    rejected = found[0]
    page.locator("#found .card").first.get_by_role("button", name="Not this one").click()
    page.wait_for_function(f"() => ![...document.querySelectorAll('#found .card')]"
                           f".some(c => c.dataset.product === '{rejected}')")
    again = [c.get_attribute("data-product") for c in page.locator("#found .card").all()]
    assert rejected not in again and all(facts.loc[p, "stone_type"] != excluded for p in again)
    assert outside == []
    page.close()


def test_the_page_is_usable_from_the_keyboard(site, browser):
    base, svc = site
    page, _ = signed_in(browser, base)
    client = svc._clients_by_recency()[1]
    page.get_by_label("Client id, city, country or segment").focus()
    page.keyboard.type(client)
    page.keyboard.press("Enter")
    # the sign-in lists every client first: wait for the list of this search, or Tab lands on a button it replaces
    page.wait_for_function(f"() => (b => b.length > 0 && b.every(x => x.dataset.id.includes('{client}')))"
                           f"([...document.querySelectorAll('#results button')])")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent").strip()
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")                                              # the first result, by keyboard
    page.locator("#recs .card").first.wait_for()
    labels = page.evaluate("() => [...document.querySelectorAll('input')].every(i => i.labels.length > 0)")
    alts = page.evaluate("() => [...document.querySelectorAll('img')].every(i => i.alt.trim().length > 0)")
    assert labels and alts
    page.close()


def test_a_merchandiser_previews_a_draft_rule_and_an_invalid_file_is_never_saved(site, browser, artifacts):
    base, svc = site
    rules_file = svc.ws.root / "rules.yaml"
    saved = rules_file.read_text()
    client = svc._clients_by_recency()[0]
    page, outside = signed_in(browser, base)
    page.goto(f"{base}/app/merchandising.html")
    page.wait_for_function("() => document.getElementById('rules').value.includes('placements')")
    page.get_by_label("Client id").fill(client)
    page.get_by_role("button", name="Preview", exact=True).click()
    page.locator("#without .card").first.wait_for()
    category = dict(zip(svc.data.products["product_id"], svc.data.products["category"], strict=True))
    without = [c.get_attribute("data-product") for c in page.locator("#without .card").all()]
    banned = category[without[0]]
    draft = saved.replace("home: {exclude: {}}", f"home: {{exclude: {{category: [{banned}]}}}}")
    assert draft != saved
    page.get_by_label("The rules file").fill(draft)
    page.get_by_role("button", name="Preview with this draft").click()
    page.wait_for_function("() => document.getElementById('with-note').textContent.includes('draft')")
    page.locator("#with .card").first.wait_for()
    shown = [c.get_attribute("data-product") for c in page.locator("#with .card").all()]
    assert shown and banned not in {category[p] for p in shown}                 # the draft's rule holds
    assert rules_file.read_text() == saved                                      # a preview saves nothing
    page.screenshot(path=str(artifacts / "merchandising.png"), full_page=True)

    page.get_by_label("The rules file").fill(saved.replace("strength: 0.2", "strength: 7"))
    page.get_by_role("button", name="Validate and save").click()
    page.locator("#problems li").first.wait_for()
    assert "diversity" in page.locator("#problems").inner_text()
    assert "Not saved" in page.locator("#status").inner_text()
    assert rules_file.read_text() == saved and svc.policy.diversity.strength == 0.2
    assert outside == []
    page.close()


def test_the_models_page_shows_versions_offline_metrics_and_rolls_back(site, browser, artifacts):
    base, svc = site
    have = versions(svc.ws, "itemknn")
    svc.activate("itemknn", have[-1])                                # the newest version serves
    page, outside = signed_in(browser, base)
    page.goto(f"{base}/app/models.html")
    page.locator("#metrics tbody tr").first.wait_for()
    rows = {r.locator("th").inner_text(): r for r in page.locator("#metrics tbody tr").all()}
    assert set(rows) == {"pop", "itemknn"}
    assert float(rows["itemknn"].locator("td").first.inner_text()) > 0             # NDCG@10 from the report
    assert "itemknn (served)" in page.locator("#models").inner_text()
    report = page.get_attribute("#report-link", "href")
    assert page.request.get(f"{base}{report}").ok                                   # the full report, plots
    page.locator("#charts img").first.wait_for()
    page.wait_for_function("() => [...document.querySelectorAll('#charts img')]"
                           ".every(i => i.complete && i.naturalWidth > 0)")          # the report's plots, here
    captions = page.locator("#charts figcaption").all_inner_texts()
    assert any("accuracy" in c for c in captions) and len(captions) >= 2
    page.screenshot(path=str(artifacts / "models.png"), full_page=True)
    page.get_by_role("button", name="Roll back itemknn").click()
    page.wait_for_function("() => /is active|\\d{3}:/.test(document.getElementById('status').textContent)")
    assert "is active" in page.locator("#status").inner_text(), page.locator("#status").inner_text()
    assert svc.meta["version"] == have[-2] and active_version(svc.ws, "itemknn") == have[-2]
    assert outside == []
    page.close()




def test_the_models_page_reports_a_running_experiment_with_its_intervals(site, browser, artifacts):
    """Last in the module: it starts an A/B test on the home page (and stops it at the end)."""
    from vendome.pipeline import train
    from vendome.serve.experiments import experiments_path

    base, svc = site
    train(svc.ws, "pop", data=svc.data)
    path = experiments_path(svc.ws)
    path.write_text(KNN_VS_POP)
    svc.reload_experiments()
    page, outside = signed_in(browser, base)
    headers = {"X-API-Key": KEY}
    clients = list(svc.data.customers["customer_id"].head(60))
    for i, cid in enumerate(clients):                               # 60 visitors see their arm's list
        shown = page.request.get(f"{base}/v1/customers/{cid}/recommendations?k=4", headers=headers).json()
        if i % 3 == 0:                                             # a third of them buy what they were shown
            page.request.post(f"{base}/v1/events", headers=headers, data={
                "customer_id": cid, "product_id": shown["items"][0]["product_id"], "interaction_type": "purchase"})
    page.goto(f"{base}/app/models.html")
    table = page.locator("#experiments table")
    table.wait_for()
    assert "home-knn-vs-pop: 60 visitors" in table.locator("caption").inner_text()
    rows = {r.locator("th").inner_text(): r.locator("td").all_inner_texts() for r in table.locator("tbody tr").all()}
    assert set(rows) == {"control", "knn"}
    assert rows["control"][0] == "pop" and rows["knn"][0] == "itemknn"
    assert int(rows["control"][1]) + int(rows["knn"][1]) == 60
    assert "[" in rows["knn"][3] and "%" in rows["knn"][3]                      # uplift with its 95% interval
    page.screenshot(path=str(artifacts / "models-experiment.png"), full_page=True)
    assert outside == []
    page.close()
    path.unlink()
    svc.reload_experiments()

