"""A client's recommendations: the home page's "for you" and e-mail campaigns."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response
from fastapi.concurrency import run_in_threadpool

from vendome.serve.deps import Service, require_admin
from vendome.serve.schemas import (
    Consent,
    CustomerProfile,
    CustomerRecommendations,
    CustomerSummary,
    Erasure,
    Journey,
    Placement,
    Problem,
)

router = APIRouter(prefix="/v1/customers", tags=["customers"])


@router.get("", response_model=list[CustomerSummary], dependencies=[Depends(require_admin)],
            responses={401: {"model": Problem}})
def search(svc: Service, q: Annotated[str, Query(max_length=64, description="part of the id, city, country or "
                                                  "segment")] = "",
           limit: Annotated[int, Query(ge=1, le=100)] = 20) -> list[dict]:
    """Find a client (staff, with the API key): the most recently active first."""
    return svc.search_customers(q, limit)


@router.get("/{customer_id}", response_model=CustomerProfile, dependencies=[Depends(require_admin)],
            responses={401: {"model": Problem}, 404: {"model": Problem}})
def profile(svc: Service, customer_id: Annotated[str, Path(min_length=1, max_length=128)]) -> dict:
    """Her profile for the sales associate (staff, with the API key): segment, stated and observed tastes, the
    price tiers she shops, consent."""
    return _known(lambda: svc.customer_profile(customer_id))


@router.get("/{customer_id}/journey", response_model=Journey, dependencies=[Depends(require_admin)],
            responses={401: {"model": Problem}, 404: {"model": Problem}})
def journey(svc: Service, customer_id: Annotated[str, Path(min_length=1, max_length=128)],
            limit: Annotated[int, Query(ge=1, le=500)] = 50) -> dict:
    """Her last events in time order, each with the piece (staff, with the API key)."""
    return _known(lambda: svc.journey(customer_id, limit))


@router.get("/{customer_id}/recommendations", response_model=CustomerRecommendations,
            responses={404: {"model": Problem}})
async def recommendations(svc: Service, customer_id: Annotated[str, Path(min_length=1, max_length=128)],
                          k: Annotated[int, Query(ge=1, le=100)] = 10,
                          placement: Annotated[Placement, Query()] = "home") -> Response:
    """Top-k pieces for the client, within the guardrails of the placement, each with its reason."""
    # The service's JSON text as it is (a cache hit is never decoded nor re-validated): it was built from the
    # response model, so the body is what the schema above documents. A list ready in the in-process cache is
    # sent from the event loop; anything that computes, logs or waits on Redis runs in the thread pool.
    try:
        text = svc.ready_for_customer_json(customer_id, k, placement)
        if text is None:
            text = await run_in_threadpool(svc.for_customer_json, customer_id, k, placement)
    except KeyError as err:
        raise HTTPException(404, detail=str(err).strip("'\"")) from None
    return Response(text, media_type="application/json")


CustomerPath = Annotated[str, Path(min_length=1, max_length=128)]


@router.post("/{customer_id}/opt-out", response_model=Consent, responses={404: {"model": Problem}})
def opt_out(svc: Service, customer_id: CustomerPath) -> dict:
    """From now on she gets non-personalised answers (best sellers within the rules)."""
    return _known(lambda: svc.opt_out(customer_id, True))


@router.delete("/{customer_id}/opt-out", response_model=Consent, responses={404: {"model": Problem}})
def opt_in(svc: Service, customer_id: CustomerPath) -> dict:
    """She opts back in to personalised answers."""
    return _known(lambda: svc.opt_out(customer_id, False))


@router.delete("/{customer_id}", response_model=Erasure, dependencies=[Depends(require_admin)],
               responses={401: {"model": Problem}, 404: {"model": Problem}})
def erase(svc: Service, customer_id: CustomerPath) -> dict:
    """Right to be forgotten (admin): her rows, events and consent leave the store, every stored model version
    and the live state forget her; a receipt without her id is kept."""
    if customer_id not in svc.data.user_index:
        raise HTTPException(404, detail=f"unknown customer {customer_id!r}")
    return svc.erase(customer_id)


def _known(call):
    try:
        return call()
    except KeyError as err:
        raise HTTPException(404, detail=str(err).strip("'\"")) from None
