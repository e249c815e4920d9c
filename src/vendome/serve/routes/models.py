"""Model versions: list them, activate one, roll back (admin). A version is never overwritten, so a roll-back is
one pointer write; the served model is swapped in place, without a restart."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request

from vendome.serve.deps import Service, require_admin
from vendome.serve.schemas import Activation, ModelVersions, Problem

router = APIRouter(prefix="/v1/models", tags=["models"])
Name = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")]
Version = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]


@router.get("", response_model=list[ModelVersions])
def listing(svc: Service) -> list[dict]:
    return svc.model_versions()


@router.post("/{name}/versions/{version}/activate", response_model=Activation,
             dependencies=[Depends(require_admin)], responses={401: {"model": Problem}, 404: {"model": Problem}})
def activate(request: Request, svc: Service, name: Name, version: Version) -> dict:
    try:
        out = svc.activate(name, version)
    except FileNotFoundError as err:
        raise HTTPException(404, detail=str(err)) from None
    request.app.state.metrics.model_activated(svc.model.name, svc.meta.get("version"))
    return out


@router.post("/{name}/rollback", response_model=Activation, dependencies=[Depends(require_admin)],
             responses={401: {"model": Problem}, 409: {"model": Problem}})
def rollback(request: Request, svc: Service, name: Name) -> dict:
    try:
        out = svc.rollback(name)
    except ValueError as err:
        raise HTTPException(409, detail=str(err)) from None
    request.app.state.metrics.model_activated(svc.model.name, svc.meta.get("version"))
    return out
