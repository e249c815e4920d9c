"""A/B experiments: what runs where (public), their report and a reload of the file (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path

from vendome.serve.deps import Service, require_admin
from vendome.serve.experiments import ExperimentError
from vendome.serve.schemas import Problem

router = APIRouter(prefix="/v1/experiments", tags=["experiments"])
Name = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")]


@router.get("")
def listing(svc: Service) -> list[dict]:
    """The experiments of WORKSPACE/experiments.yaml: placements, arms (model, weight), dates, status."""
    return [e.model_dump(mode="json") for e in svc.experiments.experiments]


@router.get("/{name}/report", dependencies=[Depends(require_admin)],
            responses={401: {"model": Problem}, 404: {"model": Problem}})
def report(svc: Service, name: Name) -> dict:
    """Per arm: visitors, conversion, clicks on recommendations, revenue per visitor; uplift against the control
    with 95% intervals and p-values; the sample-ratio check."""
    try:
        return svc.experiment_report(name)
    except KeyError as err:
        raise HTTPException(404, detail=str(err).strip("'\"")) from None


@router.post("/reload", dependencies=[Depends(require_admin)],
             responses={401: {"model": Problem}, 422: {"model": Problem}})
def reload(svc: Service) -> dict:
    """Read WORKSPACE/experiments.yaml again; a file with any problem is refused and the one in force stays."""
    try:
        return {"experiments": svc.reload_experiments()}
    except ExperimentError as err:
        raise HTTPException(422, detail=err.problems) from None
