"""The guardrail file in force: read it, replace it (admin). A file that does not parse or does not compile
against the catalog is refused with every problem listed, and the rules in force stay as they were."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException

from vendome.rules import DEFAULT_RULES, Guard, PolicyError, parse_policy, save_policy
from vendome.serve.deps import Service, require_admin
from vendome.serve.schemas import PreviewRequest, Problem, RulesPreview, RulesState, RulesText
from vendome.serve.service import rules_path

router = APIRouter(prefix="/v1/rules", tags=["rules"])


@router.get("", response_model=RulesState)
def current(svc: Service) -> dict:
    path = rules_path(svc.ws)
    source = path if path.exists() else DEFAULT_RULES
    return {"source": str(source), "yaml": source.read_text(encoding="utf-8"),
            "policy": svc.policy.model_dump(mode="json")}


@router.put("", response_model=RulesState, dependencies=[Depends(require_admin)],
            responses={401: {"model": Problem}, 422: {"model": Problem}})
def replace(body: RulesText, svc: Service) -> dict:
    try:
        save_policy(rules_path(svc.ws), body.yaml, check=lambda policy: Guard(policy, svc.data))
        svc.reload_rules()
    except PolicyError as err:
        raise HTTPException(422, detail=err.problems) from None
    return current(svc)


@router.post("/preview", response_model=RulesPreview, dependencies=[Depends(require_admin)],
             responses={401: {"model": Problem}, 404: {"model": Problem}, 422: {"model": Problem}})
def preview(body: PreviewRequest, svc: Service) -> dict:
    """A client's list with the rules in force (or the draft `yaml`, before saving it) beside the same list under
    the shipped default rules; nothing is saved, cached or logged."""
    try:
        policy = parse_policy(body.yaml, "draft rules") if body.yaml is not None else None
        return svc.preview(body.customer_id, body.placement, body.k, policy)
    except PolicyError as err:
        raise HTTPException(422, detail=err.problems) from None
    except KeyError as err:
        raise HTTPException(404, detail=str(err).strip("'\"")) from None
