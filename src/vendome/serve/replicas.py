"""Several API processes over one PostgreSQL store and one Redis: each replica follows what the others change.

    svc = Recommendations(ws, "hybrid")     # ws.database_url set: svc.replica is a Replica
    svc.replica.start()                     # `vendome serve` and create_app's lifespan do this

A replica holds the clients' histories, the model and the guardrails in memory (that is what makes an answer take
milliseconds), so a change accepted by another replica must reach its memory, not only the store:

- **events** (an acknowledged event must change her next answer, whichever replica answers): before every request
  the replica reads the store's watermark (the event log's last sequence number, the latest consent change and the
  count of erasures: one indexed query, well under a millisecond on loopback) and, when it moved, folds the new
  events into memory exactly as the accepting replica did. The event log's sequence numbers are assigned in commit
  order (the log serialises its writers), so "everything after n" never skips a late commit.
- **opt-out** and **erasure**: the same watermark; an opt-out is re-read from the store, an erasure reloads the
  dataset and makes the live models forget her (the accepting replica has already rewritten the stored versions).
- **model activation, rules, experiments**: files of the shared workspace folder (the ACTIVE pointer, rules.yaml,
  experiments.yaml), polled by a background thread every `interval` seconds; a change is swapped in as the admin
  endpoint would, and everything cached is invalidated.

Answers cached in Redis are shared: each key embeds generations that the accepting replica bumps, and a replica
that folds in someone else's change bumps them again, so an answer computed from stale memory in the moment before
it caught up is never served afterwards. No home-made cluster layer: the store is the source of truth and Redis the
shared cache; a replica that starts late reads everything from the store.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from vendome.data import store
from vendome.serve.events import EVENT_FIELDS, EVENT_TABLE
from vendome.serve.privacy import CONSENT_TABLE, ERASURE_TABLE

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 1.0          # seconds between polls of the shared files (activation, rules, experiments)
_WATERMARK = (f"SELECT (SELECT coalesce(max(seq), 0) FROM {EVENT_TABLE}), "
              f"(SELECT count(*) || '@' || coalesce(max(updated_at)::text, '') FROM {CONSENT_TABLE}), "
              f"(SELECT count(*) FROM {ERASURE_TABLE})")


@dataclass(frozen=True)
class Watermark:
    """Where the shared store stands: compared before each request, so an unchanged store costs one query."""

    events: int                 # the event log's last sequence number
    consent: str                # the latest consent change (time and count), as text
    erasures: int               # how many erasures the store has recorded


class Replica:
    """Keeps one API process in step with the other processes sharing its store and workspace folder.

    `catch_up()` runs at the start of every request that reads a client's state; `poll()` runs in a background
    thread. Both take the service's lock only when something changed.
    """

    def __init__(self, svc, interval: float | None = None) -> None:
        self.svc = svc
        self.interval = interval if interval is not None else float(
            os.environ.get("VENDOME_SYNC_INTERVAL", DEFAULT_INTERVAL))
        self._lock = threading.Lock()
        self._own: set[str] = set()       # ids this process appended, not yet met again in the log
        self.mark = self.watermark()
        self._files = self._file_stamps()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.caught_up = {"events": 0, "opt_outs": 0, "erasures": 0, "activations": 0, "rules": 0, "experiments": 0}

    # ------------------------------------------------------------------------------------------ the store
    def watermark(self) -> Watermark:
        """One query over the three tables other replicas change (each indexed or small)."""
        with store.writer(self.svc.ws).reading() as con:
            events, consent, erasures = con.execute(_WATERMARK).fetchone()
        return Watermark(int(events), str(consent), int(erasures))

    def appended(self, ids: list[str]) -> None:
        """This process appended (and already folded in) these events: skip them when the log shows them."""
        with self._lock:
            self._own.update(ids)

    def catch_up(self) -> Watermark:
        """Fold in what other replicas committed since the last look (events, opt-outs, erasures)."""
        mark = self.watermark()
        if mark == self.mark:
            return mark
        with self.svc._lock, self._lock:     # the service's lock first, as every request path takes them
            if mark.events != self.mark.events:
                self._fold_events(self.mark.events)
            if mark.consent != self.mark.consent:
                self.svc.refresh_consent()
                self.caught_up["opt_outs"] += 1
            if mark.erasures != self.mark.erasures:
                self.svc.refresh_after_erasure()
                self.caught_up["erasures"] += 1
            self.mark = mark
        return mark

    def _fold_events(self, after: int) -> None:
        rows = self.svc.events.since_seq(after)
        if rows.empty:
            return
        mine = rows["interaction_id"].isin(self._own).to_numpy()
        self._own.difference_update(rows.loc[mine, "interaction_id"])
        theirs = rows.loc[~mine]
        if len(theirs):
            self.svc.fold_in(_as_events(theirs))
            self.caught_up["events"] += len(theirs)

    # ------------------------------------------------------------------------------------------ the files
    def _watched(self) -> dict[str, tuple[Path, Callable[[], object]]]:
        from vendome.serve.experiments import experiments_path
        from vendome.serve.service import rules_path

        svc = self.svc
        return {"activations": (svc.ws.models / svc.model.name / "ACTIVE", svc.follow_activation),
                "rules": (rules_path(svc.ws), svc.reload_rules),
                "experiments": (experiments_path(svc.ws), svc.reload_experiments)}

    def _file_stamps(self) -> dict[str, tuple[float, int] | None]:
        out: dict[str, tuple[float, int] | None] = {}
        for what, (path, _) in self._watched().items():
            try:
                st = path.stat()
                out[what] = (st.st_mtime, st.st_size)
            except FileNotFoundError:
                out[what] = None
        return out

    def poll(self) -> list[str]:
        """Swap in what changed among the shared files; returns what did. A file that fails to load (a rules file
        that does not compile, say) is logged and the one in force stays."""
        stamps = self._file_stamps()
        changed = [what for what, stamp in stamps.items() if stamp != self._files.get(what)]
        for what in changed:
            _, apply = self._watched()[what]
            try:
                apply()
                self.caught_up[what] += 1
            except Exception as err:       # the replica keeps serving what it has; the accepting replica validated it
                log.warning("replica: could not follow the change of %s: %s", what, err)
        self._files = stamps if not changed else self._file_stamps()
        return changed

    # ------------------------------------------------------------------------------------------ the thread
    def start(self) -> Replica:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="vendome-replica", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll()
                self.catch_up()        # also without requests: a warmer, the /healthz counts stay current
            except Exception as err:  # a store that is down for a moment: try again next time
                log.warning("replica: poll failed: %s", err)

    def status(self) -> dict:
        return {"events_seq": self.mark.events, "erasures": self.mark.erasures, "interval": self.interval,
                "caught_up": dict(self.caught_up)}


def _as_events(rows: pd.DataFrame) -> pd.DataFrame:
    """Log rows in the shape of the accepting replica's `Event`s (what `Dataset.add_events` takes)."""
    out = rows[list(EVENT_FIELDS)].copy()
    out["timestamp"] = pd.to_datetime(out["timestamp"], utc=True)
    out["interaction_duration"] = pd.to_numeric(out["interaction_duration"]).astype(np.float64)
    return out.reset_index(drop=True)


def wait_until(check: Callable[[], bool], timeout: float = 5.0, step: float = 0.05) -> bool:
    """Poll `check` until it holds or the timeout passes (for tests and the load bench: replicas converge)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(step)
    return check()
