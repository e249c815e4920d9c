"""Live events from the website: committed to the store before the 2xx, seen by the next recommendation."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request

from vendome.serve.deps import Service
from vendome.serve.events import InvalidEventsError
from vendome.serve.schemas import Accepted, EventBatch, EventIn, Problem

router = APIRouter(prefix="/v1/events", tags=["events"])


def _record(request: Request, svc, events: list[EventIn]) -> dict:
    try:
        ids = svc.record_events([e.model_dump(exclude_none=True) for e in events])
        request.app.state.metrics.events_accepted(len(ids))
        return {"ids": ids}
    except InvalidEventsError as err:
        raise HTTPException(422, detail=err.to_dict()) from None


@router.post("", status_code=201, response_model=Accepted, responses={422: {"model": Problem}})
def one(request: Request, event: EventIn, svc: Service) -> dict:
    """One event (view, click, add_to_cart, remove_from_cart, add_to_wishlist, purchase)."""
    return _record(request, svc, [event])


@router.post("/batch", status_code=201, response_model=Accepted, responses={422: {"model": Problem}})
def batch(request: Request, body: EventBatch, svc: Service) -> dict:
    """Up to 10,000 events, all or nothing: one bad event (named by its index) and none is kept."""
    return _record(request, svc, body.events)
