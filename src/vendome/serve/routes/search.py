"""Composed search: "like this, but in rose gold, no diamonds" (the AMMR fast path, or the planner on request)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.concurrency import run_in_threadpool

from vendome.serve.deps import Service
from vendome.serve.schemas import Problem, SearchRequest, SearchResults

router = APIRouter(tags=["search"])


@router.post("/v1/search", response_model=SearchResults,
             responses={404: {"model": Problem}, 422: {"model": Problem}})
async def composed_search(body: SearchRequest, svc: Service) -> dict:
    """Pieces that keep the anchor and apply the change the words ask for; every result satisfies every hard
    constraint (negations, price limits, the subcategory) and the house's rules."""
    try:
        return await run_in_threadpool(svc.composed_search, body.text, body.anchor, body.customer_id, body.k,
                                       body.session_id, body.planner, body.reject)
    except KeyError as err:
        raise HTTPException(404, detail=str(err).strip("'\"")) from None
    except ValueError as err:
        raise HTTPException(422, detail=str(err)) from None
