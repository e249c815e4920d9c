"""The warmer: a background thread that keeps every client's "for you" list computed ahead, in the cache.

    warmer = Warmer(svc).start()      # `vendome serve` does this unless --no-warm
    warmer.trigger()                  # after an invalidation of everything (model, rules, experiments, erasure)

A home page request is then a cache read (the answer's JSON text sent as stored), which is what lets one process
serve thousands of requests a second. Nothing is approximated: an entry is dropped by the client's events, opt-out
or erasure, by a model activation or a rules change, and expires when a dated rule could change it
(`Guard.stable_until`), so a warmed answer is the one a fresh computation would give. A client whose entry was
dropped is computed on her next request as before; the warmer refills everything after a global invalidation and
when the entries expire.
"""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger(__name__)


class Warmer:
    """Runs `svc.warm` for the placement in a daemon thread: at start, on `trigger`, and when entries expire."""

    def __init__(self, svc, placement: str = "home", k: int = 10, limit: int | None = None) -> None:
        self.svc, self.placement, self.k, self.limit = svc, placement, k, limit
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._full = True                         # the next wake-up runs a whole round (else: the pending clients)
        self._pending: dict[str, None] = {}       # clients whose entry an event dropped, in arrival order
        self._plock = threading.Lock()
        self._cut = False                         # the round in progress was cut short
        self._thread: threading.Thread | None = None
        self.rounds = 0
        self.computed = 0
        self.running = False
        self.last_seconds: float | None = None

    def start(self) -> Warmer:
        self.svc.warmer = self
        self._thread = threading.Thread(target=self._loop, name="vendome-warmer", daemon=True)
        self._wake.set()
        self._thread.start()
        return self

    def trigger(self) -> None:
        """Warm again (a round in progress stops at its next batch and starts over)."""
        self._full = True
        self._wake.set()

    def refresh(self, customer_ids) -> None:
        """Her events dropped her entry: compute it again now, before her next page view asks for it (at 100,000
        products a list costs about 100 ms to compute; her next request then finds it ready)."""
        with self._plock:
            self._pending.update(dict.fromkeys(map(str, customer_ids)))
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wait_idle(self, timeout: float = 600.0) -> bool:
        """Block until a round has finished and no new one is due (tests and benchmarks); False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.rounds and not self.running and not self._wake.is_set() and not self._pending:
                return True
            time.sleep(0.05)
        return False

    def status(self) -> dict:
        return {"running": self.running, "rounds": self.rounds, "computed": self.computed,
                "last_seconds": self.last_seconds}

    def _warm_search(self) -> None:
        """Load the workspace's saved composed-search engine and its text encoder, so the first search of the day
        does not pay for them (about 3 s). An engine not fitted yet stays lazy: fitting is not a warm-up's job."""
        if not (self.svc.ws.root / "search" / "engine.pkl").exists():
            return
        try:
            self.svc.searcher().engine.search("warm up", k=1)
        except Exception:                         # search must never take serving down with it
            log.exception("warmer: the composed-search engine could not be loaded")

    def _loop(self) -> None:
        self._warm_search()
        while not self._stop.is_set():
            # the next expiry of the entries (a launch, midnight with seasons, the cache's TTL) wakes it too
            woke = self._wake.wait(timeout=max(1.0, min(self.svc.cache.ttl, self.svc._expiry())))
            if self._stop.is_set():
                break
            self._wake.clear()
            with self._plock:
                pending, self._pending = list(self._pending), {}
            if pending:
                self._refresh(pending)
                if self._full:                    # a round is still due: it runs next
                    self._wake.set()
                continue
            if woke and not self._full:
                continue
            self._full = False
            self.running, self._cut = True, False
            t0 = time.perf_counter()
            try:
                n = self.svc.warm(self.placement, self.k, self.limit, should_stop=self._interrupted)
            except Exception:                     # a failing round must not kill serving; the next one retries
                log.exception("warmer: a round failed")
                n = 0
            self.computed += n
            if not self._cut:                     # a round cut short starts over: it is not a finished one
                self.rounds += 1
                self.last_seconds = time.perf_counter() - t0
            self.running = False
            log.info("warmer: %d %s lists computed in %.1f s", n, self.placement, self.last_seconds)

    def _interrupted(self) -> bool:
        """A full round gives way to a stop, a new full round, or clients waiting for their refreshed list (it
        resumes afterwards: the wake-up is kept for it)."""
        if self._pending:
            self._full = True                     # come back to the round once they are served
        self._cut = self._stop.is_set() or self._full
        return self._cut

    def _refresh(self, customers: list[str]) -> None:
        try:
            self.computed += self.svc.warm(self.placement, self.k, customers=customers)
        except Exception:
            log.exception("warmer: refreshing %d clients failed", len(customers))
