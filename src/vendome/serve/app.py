"""HTTP API (FastAPI): recommendations for a customer, similar products, health.

The foundation's minimal surface over `Recommendations`; guardrail files, events, A/B tests and privacy endpoints
arrive with the serving issue on the same app.
"""

from __future__ import annotations

from fastapi import FastAPI, HTTPException, Query

from vendome.serve.service import Recommendations
from vendome.workspace import Workspace


def create_app(ws: Workspace, model: str = "hybrid") -> FastAPI:
    service = Recommendations(ws, model)
    app = FastAPI(title="Vendome", version="0.1.0",
                  description="Recommendations for luxury, fashion and jewelry retail.")

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok", "model": service.model.name, "version": service.meta.get("version"),
                "products": service.data.n_items, "customers": service.data.n_users}

    @app.get("/v1/customers/{customer_id}/recommendations")
    def for_customer(customer_id: str, k: int = Query(10, ge=1, le=100),
                     placement: str = Query("home", max_length=32)) -> dict:
        try:
            return {**service.for_customer(customer_id, k=k), "placement": placement}
        except KeyError as err:
            raise HTTPException(404, detail=str(err).strip("'\"")) from None

    @app.get("/v1/products/{product_id}/similar")
    def similar(product_id: str, k: int = Query(10, ge=1, le=100)) -> dict:
        try:
            return service.similar(product_id, k=k)
        except KeyError as err:
            raise HTTPException(404, detail=str(err).strip("'\"")) from None
        except ValueError as err:
            raise HTTPException(409, detail=str(err)) from None

    return app
