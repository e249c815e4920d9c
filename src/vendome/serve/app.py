"""The HTTP API (FastAPI): one router per resource over one `Recommendations` service.

    app = create_app(Workspace("workspace"), model="hybrid")      # `vendome serve` runs it with uvicorn

Every list goes through the workspace's guardrails (`WORKSPACE/rules.yaml`); admin endpoints need the X-API-Key
header (the key given here, else VENDOME_API_KEY, else `WORKSPACE/admin_api_key`). Bodies over MAX_BODY_BYTES are
refused before they are read.
"""

from __future__ import annotations

import gc
import time
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from vendome.serve.deps import Service, admin_key
from vendome.serve.metrics import Metrics, route_template
from vendome.serve.routes import campaigns, customers, events, experiments, models, products, reports, rules, search
from vendome.serve.schemas import Health
from vendome.serve.service import Recommendations
from vendome.serve.warm import Warmer
from vendome.workspace import Workspace

MAX_BODY_BYTES = 4_000_000   # a 10,000-event batch fits
WEB = Path(__file__).parent / "web"   # the staff pages: scripts and styles as they are, no build step
PAGES = (("clienteling", "Clienteling"), ("merchandising", "Merchandising"), ("models", "Models"))


def render_pages() -> dict[str, str]:
    """Each page of web/pages rendered once from the shared layout (base.html: head, navigation, sign-in)."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(WEB / "pages"), autoescape=select_autoescape())
    return {name: env.get_template(f"{name}.html").render(page=name, title=title, pages=PAGES)
            for name, title in PAGES}


def create_app(ws: Workspace, model: str = "hybrid", api_key: str | None = None,
               svc: Recommendations | None = None, warm: bool = False) -> FastAPI:
    """The app over `svc` (default: the workspace's service for `model`). `warm`: a background thread computes
    every client's home list ahead (`vendome.serve.warm`); `vendome serve` turns it on."""
    svc = svc or Recommendations(ws, model)
    warmer = Warmer(svc) if warm else None

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # What start-up loaded (catalog, history, model, imported libraries) lives as long as the process: frozen,
        # the cyclic GC no longer walks it on every full collection (150 ms pauses, the p99 of every endpoint).
        gc.freeze()
        if svc.replica is not None:
            svc.replica.start()
        if warmer is not None:
            warmer.start()
        yield
        if warmer is not None:
            warmer.stop()
        if svc.replica is not None:
            svc.replica.stop()
        svc.campaigns.shutdown()

    app = FastAPI(lifespan=lifespan, title="Vendome", version="0.1.0",
                  description="Recommendations for luxury, fashion and jewelry retail, within the house's "
                              "guardrails, with a reason for every piece.")
    app.state.service = svc
    app.state.admin_key = admin_key(ws, api_key)
    app.state.metrics = metrics = Metrics(cache=svc.cache)
    metrics.model_activated(svc.model.name, svc.meta.get("version"))

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        size = request.headers.get("content-length")
        if size is not None and (not size.isdigit() or int(size) > MAX_BODY_BYTES):
            return JSONResponse({"detail": f"request body over {MAX_BODY_BYTES} bytes"}, status_code=413)
        t0 = time.perf_counter()
        response = await call_next(request)
        metrics.observe_request(route_template(request), response.status_code, time.perf_counter() - t0)
        return response

    @app.get("/metrics", tags=["operations"], response_class=Response,
             responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}})
    def prometheus() -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    @app.get("/livez", tags=["operations"])
    async def livez() -> dict:
        """Liveness: the process answers (no model, no store); also the load test's bare reference endpoint."""
        return {"status": "alive"}

    @app.get("/healthz", response_model=Health, tags=["operations"])
    def healthz(svc: Service) -> dict:
        return {"status": "ok", "model": svc.model.name, "version": svc.meta.get("version"),
                "products": svc.data.n_items, "customers": svc.data.n_users,
                "warmer": svc.warmer.status() if svc.warmer is not None else None,
                "replica": svc.replica.status() if svc.replica is not None else None}

    @app.get("/app", include_in_schema=False)
    def web_app() -> RedirectResponse:
        return RedirectResponse("/app/clienteling.html")

    rendered = render_pages()

    @app.get("/app/{page}.html", include_in_schema=False)
    def web_page(page: str) -> HTMLResponse:
        if page not in rendered:
            raise HTTPException(404, detail=f"no page {page!r}")
        return HTMLResponse(rendered[page])

    @app.middleware("http")
    async def web_headers(request: Request, call_next):
        response = await call_next(request)
        if request.url.path.startswith("/app/"):     # the pages may load nothing from another origin
            response.headers["Content-Security-Policy"] = "default-src 'self'; img-src 'self' https: data:"
        return response

    app.mount("/app", StaticFiles(directory=WEB, html=True), name="app")
    for router in (customers.router, products.router, campaigns.router, events.router, experiments.router,
                   models.router, reports.router, rules.router, search.router):
        app.include_router(router)
    return app
