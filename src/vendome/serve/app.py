"""The HTTP API (FastAPI): one router per resource over one `Recommendations` service.

    app = create_app(Workspace("workspace"), model="hybrid")      # `vendome serve` runs it with uvicorn

Every list goes through the workspace's guardrails (`WORKSPACE/rules.yaml`); admin endpoints need the X-API-Key
header (the key given here, else VENDOME_API_KEY, else `WORKSPACE/admin_api_key`). Bodies over MAX_BODY_BYTES are
refused before they are read.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from vendome.serve.deps import Service, admin_key
from vendome.serve.routes import customers, products, rules
from vendome.serve.schemas import Health
from vendome.serve.service import Recommendations
from vendome.workspace import Workspace

MAX_BODY_BYTES = 1_000_000


def create_app(ws: Workspace, model: str = "hybrid", api_key: str | None = None,
               svc: Recommendations | None = None) -> FastAPI:
    app = FastAPI(title="Vendome", version="0.1.0",
                  description="Recommendations for luxury, fashion and jewelry retail, within the house's "
                              "guardrails, with a reason for every piece.")
    app.state.service = svc or Recommendations(ws, model)
    app.state.admin_key = admin_key(ws, api_key)

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        size = request.headers.get("content-length")
        if size is not None and (not size.isdigit() or int(size) > MAX_BODY_BYTES):
            return JSONResponse({"detail": f"request body over {MAX_BODY_BYTES} bytes"}, status_code=413)
        return await call_next(request)

    @app.get("/healthz", response_model=Health, tags=["operations"])
    def healthz(svc: Service) -> dict:
        return {"status": "ok", "model": svc.model.name, "version": svc.meta.get("version"),
                "products": svc.data.n_items, "customers": svc.data.n_users}

    for router in (customers.router, products.router, rules.router):
        app.include_router(router)
    return app
