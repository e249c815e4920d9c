"""The workspace's offline evaluation reports (`vendome evaluate`, `vendome demo`): the headline metrics of every
model they compared, and the full HTML report with its plots. Aggregates only, nothing about one client."""

from __future__ import annotations

import base64
import json
import threading
from functools import lru_cache
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path
from fastapi.responses import FileResponse, Response

from vendome.serve.deps import Service
from vendome.serve.schemas import EvaluationReport, Problem

router = APIRouter(prefix="/v1/reports", tags=["reports"])
ReportName = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,80}$")]
ChartName = Annotated[str, Path(pattern=r"^[a-z_]{1,32}$")]
CHART_TITLES = {"accuracy": "accuracy at 10 per model", "curves": "NDCG and HR by cut-off",
                "slices": "NDCG@10 by user and item slice", "exposure": "exposure by category",
                "coverage": "accuracy against catalog coverage"}
_draw_lock = threading.Lock()        # matplotlib's pyplot state is not thread-safe
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


@router.get("/{name}/charts", response_model=list[dict[str, str]], responses={404: {"model": Problem}})
def charts(svc: Service, name: ReportName) -> list[dict]:
    """The report's plots (accuracy, cut-off curves, slices, exposure, coverage), each as a PNG this API serves."""
    return [{"chart": key, "title": CHART_TITLES.get(key, key), "url": f"/v1/reports/{name}/charts/{key}.png"}
            for key in _charts(*_report_file(svc, name))]


@router.get("/{name}/charts/{chart}.png", response_class=Response, responses={200: {"content": {"image/png": {}}},
                                                                             404: {"model": Problem}})
def chart(svc: Service, name: ReportName, chart: ChartName) -> Response:
    """One plot of the report, drawn from its JSON (the same charts as the HTML report)."""
    drawn = _charts(*_report_file(svc, name))
    if chart not in drawn:
        raise HTTPException(404, detail=f"report {name!r} has no chart {chart!r}; it has: {', '.join(drawn)}")
    return Response(base64.b64decode(drawn[chart]), media_type="image/png",
                    headers={"Cache-Control": "public, max-age=300"})


def _report_file(svc, name: str) -> tuple[str, float]:
    path = svc.ws.root / "reports" / f"{name}.json"
    if not path.is_file():
        raise HTTPException(404, detail=f"no report {name!r}")
    return str(path), path.stat().st_mtime


@lru_cache(maxsize=8)
def _charts(path: str, mtime: float) -> dict[str, str]:
    """Every chart of one report file, drawn once per version of the file (the mtime is part of the key)."""
    from vendome.evaluate.plots import all_charts

    with open(path, encoding="utf-8") as f:
        report = json.load(f)
    with _draw_lock:
        return all_charts(report)
