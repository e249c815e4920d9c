"""A client's recommendations: the home page's "for you" and e-mail campaigns."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query

from vendome.serve.deps import Service
from vendome.serve.schemas import CustomerRecommendations, Placement, Problem

router = APIRouter(prefix="/v1/customers", tags=["customers"])


@router.get("/{customer_id}/recommendations", response_model=CustomerRecommendations,
            responses={404: {"model": Problem}})
def recommendations(svc: Service, customer_id: Annotated[str, Path(min_length=1, max_length=128)],
                    k: Annotated[int, Query(ge=1, le=100)] = 10,
                    placement: Annotated[Placement, Query()] = "home") -> dict:
    """Top-k pieces for the client, within the guardrails of the placement, each with its reason."""
    try:
        return svc.for_customer(customer_id, k=k, placement=placement)
    except KeyError as err:
        raise HTTPException(404, detail=str(err).strip("'\"")) from None
