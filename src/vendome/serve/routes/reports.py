"""The workspace's offline evaluation reports (`vendome evaluate`, `vendome demo`): the headline metrics of every
model they compared, and the full HTML report with its plots. Aggregates only, nothing about one client."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path
from fastapi.responses import FileResponse

from vendome.serve.deps import Service
from vendome.serve.schemas import EvaluationReport, Problem

router = APIRouter(prefix="/v1/reports", tags=["reports"])
ReportName = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,80}$")]
HEADLINE = ("ndcg@10", "hr@10", "recall@10", "coverage@10", "novelty@10", "guardrail_violations", "fit_seconds")


@router.get("", response_model=list[EvaluationReport])
def listing(svc: Service) -> list[dict]:
    """Every report of WORKSPACE/reports, the latest first, with each model's headline metrics."""
    out = []
    for path in sorted((svc.ws.root / "reports").glob("*.json")):
        try:
            doc = json.loads(path.read_text())
        except ValueError:
            continue
        if not isinstance(doc, dict) or "models" not in doc:      # run summaries beside the reports
            continue
        dataset = doc.get("dataset") or {}
        out.append({"name": path.stem, "protocol": doc.get("protocol"), "generated_at": doc.get("generated_at"),
                    "dataset": dataset.get("name") if isinstance(dataset, dict) else str(dataset),
                    "best": (doc.get("significance") or {}).get("best"),
                    "html": f"/v1/reports/{path.stem}/html" if path.with_suffix(".html").exists() else None,
                    "models": {name: {k: m.get(k) for k in HEADLINE if k in m} for name, m in doc["models"].items()}})
    return sorted(out, key=lambda r: r["generated_at"] or "", reverse=True)


@router.get("/{name}/html", response_class=FileResponse, responses={404: {"model": Problem}})
def html(svc: Service, name: ReportName) -> FileResponse:
    """The full report: every metric, the significance tests and the plots."""
    path = svc.ws.root / "reports" / f"{name}.html"
    if not path.is_file():
        raise HTTPException(404, detail=f"no report {name!r}")
    return FileResponse(path, media_type="text/html")
