"""Segment campaigns (admin): start one, follow it, download its file. The e-mail placement leaves out clients
without marketing consent; opted-out clients get the non-personalised list."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path
from fastapi.responses import FileResponse

from vendome.serve.deps import Service, require_admin
from vendome.serve.schemas import Campaign, CampaignRequest, Problem

router = APIRouter(prefix="/v1/campaigns", tags=["campaigns"], dependencies=[Depends(require_admin)],
                   responses={401: {"model": Problem}})
CampaignId = Annotated[str, Path(pattern=r"^cp_[0-9a-f]{16}$")]


@router.post("", response_model=Campaign, status_code=202, responses={422: {"model": Problem}})
def start(svc: Service, body: CampaignRequest) -> dict:
    """Queue the lists of a segment (`{"customer_segment": ["VIP"]}`; empty: every client); 202 at once, the
    lists are computed in the background by the live model within the rules in force."""
    try:
        return svc.campaigns.start(body.segment, body.placement, body.k, body.format)
    except ValueError as err:
        raise HTTPException(422, detail=str(err)) from None


@router.get("", response_model=list[Campaign])
def listing(svc: Service) -> list[dict]:
    """Every campaign of the workspace, the latest first."""
    return svc.campaigns.list()


@router.get("/{campaign_id}", response_model=Campaign, responses={404: {"model": Problem}})
def status(svc: Service, campaign_id: CampaignId) -> dict:
    """queued, running (done of total customers), done (counts, the file), failed or interrupted (why)."""
    try:
        return svc.campaigns.status(campaign_id)
    except KeyError as err:
        raise HTTPException(404, detail=str(err).strip("'\"")) from None


@router.get("/{campaign_id}/file", response_class=FileResponse,
            responses={200: {"content": {"application/vnd.apache.parquet": {}, "text/csv": {}}},
                       404: {"model": Problem}, 409: {"model": Problem}})
def download(svc: Service, campaign_id: CampaignId) -> FileResponse:
    """The finished file: one row per (customer, rank) with product, score, reason and promotion."""
    try:
        path = svc.campaigns.path(campaign_id)
    except KeyError as err:
        raise HTTPException(404, detail=str(err).strip("'\"")) from None
    except LookupError as err:
        raise HTTPException(409, detail=str(err).strip("'\"")) from None
    media = "text/csv" if path.suffix == ".csv" else "application/vnd.apache.parquet"
    return FileResponse(path, media_type=media, filename=path.name)
