"""Segment campaigns run by the API: the batch job (`vendome.batch`) in a background thread of the serving process.

    job = svc.campaigns.start({"customer_segment": ["VIP"]}, placement="email", k=10)   # -> {"id": ..., "status"}
    svc.campaigns.status(job["id"])      # running (with progress), done (customers, rows, file), failed (error)
    svc.campaigns.path(job["id"])        # WS/campaigns/<id>.parquet, once done

The lists are the API's own: the live model (with every event it has observed), the guardrails in force, the
opt-outs; the lock is held per small batch, so live requests wait milliseconds, not minutes. Each job's state is
a JSON file beside its output, so the list of campaigns survives a restart (a job cut short by one is marked
`interrupted`). Files hold customer ids, so erasure rewrites them without her rows (`forget`).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from vendome.batch import run_batch, select_customers

log = logging.getLogger(__name__)

FORMATS = ("parquet", "csv")
BATCH = 32          # customers per locked step: a live request waits for one such step at most


class Campaigns:
    def __init__(self, svc) -> None:
        self.svc = svc
        self.dir = svc.ws.root / "campaigns"
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vendome-campaign")
        self.jobs: dict[str, dict] = {}
        for path in sorted(self.dir.glob("*.json")) if self.dir.exists() else []:
            job = json.loads(path.read_text())
            if job["status"] in ("queued", "running"):          # the process that ran it stopped
                job["status"] = "interrupted"
                job["error"] = "the server stopped before the campaign finished; start it again"
            self.jobs[job["id"]] = job

    def start(self, segment: dict[str, list[str]] | None = None, placement: str = "email", k: int = 10,
              fmt: str = "parquet") -> dict:
        """Queue a campaign; the segment is checked now (ValueError names an unknown column), the lists later."""
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        select_customers(self.svc.data, segment)
        job_id = f"cp_{uuid.uuid4().hex[:16]}"
        job = {"id": job_id, "status": "queued", "segment": segment or {}, "placement": placement, "k": k,
               "format": fmt, "model": self.svc.model.name, "version": self.svc.meta.get("version"),
               "created_at": _now(), "finished_at": None, "done": 0, "total": None, "customers": None,
               "rows": None, "skipped_no_consent": None, "not_personalised": None, "seconds": None,
               "error": None}
        self._save(job)
        self._pool.submit(self._run, job_id)
        return dict(job)

    def status(self, job_id: str) -> dict:
        with self._lock:
            if job_id not in self.jobs:
                raise KeyError(f"unknown campaign {job_id!r}")
            return dict(self.jobs[job_id])

    def list(self) -> list[dict]:
        with self._lock:
            return [dict(j) for j in sorted(self.jobs.values(), key=lambda j: j["created_at"], reverse=True)]

    def path(self, job_id: str) -> Path:
        """The finished campaign's file; KeyError when unknown, LookupError while it is not done."""
        job = self.status(job_id)
        if job["status"] != "done":
            raise LookupError(f"campaign {job_id!r} is {job['status']}, its file is not there")
        return self.dir / f"{job_id}.{job['format']}"

    def wait(self, job_id: str, timeout: float = 600.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.status(job_id)
            if job["status"] not in ("queued", "running"):
                return job
            time.sleep(0.05)
        raise TimeoutError(f"campaign {job_id!r} still {job['status']} after {timeout} s")

    def forget(self, customer_id: str) -> int:
        """Erasure: every campaign file without her rows (each rewritten atomically); returns how many changed."""
        changed = 0
        for job in self.list():
            path = self.dir / f"{job['id']}.{job['format']}"
            if job["status"] != "done" or not path.exists():
                continue
            parquet = job["format"] == "parquet"
            table = pd.read_parquet(path) if parquet else pd.read_csv(path, dtype={"customer_id": str})
            mine = table["customer_id"].astype(str) == str(customer_id)
            if not mine.any():
                continue
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
            rest = table[~mine]
            rest.to_parquet(tmp, index=False) if parquet else rest.to_csv(tmp, index=False)
            os.replace(tmp, path)
            self._update(job["id"], rows=int(len(rest)), customers=int(rest["customer_id"].nunique()))
            changed += 1
        return changed

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------------------------ the job
    def _run(self, job_id: str) -> None:
        job = self._update(job_id, status="running")
        svc = self.svc
        try:
            summary = run_batch(svc.ws, self.dir / f"{job_id}.{job['format']}", placement=job["placement"],
                                k=job["k"], segment=job["segment"] or None, data=svc.data, batch_size=BATCH,
                                progress=False, model=svc.model, guard=svc.guard, opted_out=set(svc._opted_out),
                                lock=svc._lock, on_progress=lambda done, total: self._update(
                                    job_id, done=done, total=total, persist=False))
        except Exception as err:                       # the API stays up; the job says what went wrong
            log.exception("campaign %s failed", job_id)
            self._update(job_id, status="failed", error=f"{type(err).__name__}: {err}", finished_at=_now())
            return
        self._update(job_id, status="done", finished_at=_now(), customers=summary.customers, rows=summary.rows,
                     skipped_no_consent=summary.skipped_no_consent, not_personalised=summary.not_personalised,
                     seconds=summary.seconds, done=summary.customers, total=summary.customers)

    def _update(self, job_id: str, persist: bool = True, **fields) -> dict:
        with self._lock:
            job = self.jobs[job_id]
            job.update(fields)
            out = dict(job)
        if persist:
            self._save(out)
        return out

    def _save(self, job: dict) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self.jobs[job["id"]] = dict(job)
        tmp = self.dir / f".{job['id']}.json.tmp"
        tmp.write_text(json.dumps(job, indent=1))
        os.replace(tmp, self.dir / f"{job['id']}.json")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
