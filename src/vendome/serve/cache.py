"""The response cache: answers ("for you", product page, cart) kept for a short while, in-process or in Redis.

    cache = ResponseCache()                                                   # in-process LRU
    cache = ResponseCache.from_url("redis://127.0.0.1:6379/0", namespace="prod")
    k = cache.key("for_you", "C00042", k=10, placement="home")
    answer = cache.get(k)
    if answer is None:
        answer = svc.for_customer("C00042", k=10)
        cache.set(k, answer)

Invalidation never scans keys: every key embeds a global generation (bumped by `invalidate_all`: a model
activation, a rules change) and the customer's generation (bumped by `invalidate_customer`: her events, opt-out,
erasure), so bumping a counter makes the old entries unreachable in O(1); they leave by TTL or LRU. In Redis the
generations live in Redis (`INCR vendome:{namespace}:gen` and `vendome:{namespace}:gen:{digest of the id}`), so
the API processes sharing one Redis see each other's invalidations. A key is computed before the answer, so an answer
computed while an invalidation happens is stored under the generation it read and is never served afterwards.

A cache must never break a request: with Redis unreachable or dying mid-run every call behaves as a miss
(get -> None, set and invalidations -> no-op) within the socket timeouts, the error is counted and logged, and the
cache is `degraded`: it leaves Redis alone for a back-off (doubling up to a cap) so a dead Redis does not add its
timeout to every request, then tries again. While degraded, invalidations cannot reach Redis, so on recovery the
entries written before the outage may be stale (her events arrived meanwhile, a model was activated); the cache
therefore bumps the global generation before it serves from Redis again. That throws away the warm entries of
every process sharing the namespace once per outage, a cheap price against serving a client what she was shown
before she bought it, or a piece the new rules exclude. It also covers a Redis restarted from an older snapshot,
whose generations went back in time, provided some process noticed the outage.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict

log = logging.getLogger(__name__)

DEFAULT_TTL = 3600.0            # seconds, an upper bound: callers pass the exact expiry of what they store
DEFAULT_MAX_ENTRIES = 50_000    # in-process: about 4 KB per answer of 10 cards, 200 MB at most
REDIS_TIMEOUT = 0.075           # seconds, connect and read: the API answers in < 50 ms, a cache must not double it
BACKOFF = (1.0, 5.0)            # seconds before trying a failed Redis again: first, then doubling up to the cap
UNAVAILABLE = "?"               # the generation part of a key built while the backend was out of reach


class MemoryStore:
    """A thread-safe LRU with a TTL per entry, in this process.

    A small OrderedDict under a lock rather than `cachetools`, which is not among the project's dependencies: the
    cache needs only get, set with expiry and eviction of the least recently used entry."""

    name = "memory"

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._global = 0
        self._customers: dict[str, int] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def generations(self, customer_id: str | None) -> tuple[int, int]:
        with self._lock:
            return self._global, (0 if customer_id is None else self._customers.get(customer_id, 0))

    def read(self, key: str) -> str | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= time.monotonic():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def write(self, key: str, text: str, ttl: float) -> None:
        with self._lock:
            self._entries[key] = (time.monotonic() + ttl, text)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def bump(self, customer_id: str | None) -> None:
        with self._lock:
            if customer_id is None:
                # the global generation is in every key, so the customers' counters can start again from zero
                self._global += 1
                self._customers.clear()
            else:
                self._customers[customer_id] = self._customers.get(customer_id, 0) + 1


class RedisStore:
    """Entries and generations in Redis, under `vendome:{namespace}:`; values are JSON text with a TTL (SET PX,
    the millisecond form of SET EX). No retries inside redis-py: a failure goes straight to the caller's back-off."""

    name = "redis"

    def __init__(self, url: str, namespace: str = "default", timeout: float = REDIS_TIMEOUT) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.url, self.namespace = url, namespace
        self.prefix = f"vendome:{namespace}:"
        self.client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                           retry=Retry(NoBackoff(), 0), decode_responses=True)

    def _gen_key(self, customer_id: str | None) -> str:
        """The generation counter's key; a customer's is named by a digest of her id, so Redis never holds the id
        itself (it would outlive her erasure as a key name)."""
        if customer_id is None:
            return self.prefix + "gen"
        return self.prefix + "gen:" + hashlib.blake2b(customer_id.encode(), digest_size=12).hexdigest()

    def generations(self, customer_id: str | None) -> tuple[int, int]:
        if customer_id is None:
            return int(self.client.get(self._gen_key(None)) or 0), 0
        g, c = self.client.mget(self._gen_key(None), self._gen_key(customer_id))
        return int(g or 0), int(c or 0)

    def read(self, key: str) -> str | None:
        return self.client.get(self.prefix + "r:" + key)

    def write(self, key: str, text: str, ttl: float) -> None:
        self.client.set(self.prefix + "r:" + key, text, px=max(1, round(ttl * 1000)))

    def bump(self, customer_id: str | None) -> None:
        self.client.incr(self._gen_key(customer_id))


Store = MemoryStore | RedisStore      # each raises on backend failure; ResponseCache turns that into misses


class ResponseCache:
    """JSON-able answers by key, with O(1) invalidation per customer or for all, that fails open."""

    def __init__(self, store: Store | None = None, ttl: float = DEFAULT_TTL, backoff: tuple[float, float] = BACKOFF,
                 max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self.store: Store = store if store is not None else MemoryStore(max_entries)
        self.ttl = ttl
        self.backoff = backoff
        self._lock = threading.Lock()
        self._counts = {"hits": 0, "misses": 0, "errors": 0}
        self._degraded = False
        self._retry_at = 0.0               # time.monotonic() before which a degraded cache leaves the backend alone
        self._next_backoff = backoff[0]

    @classmethod
    def from_url(cls, url: str, namespace: str = "default", ttl: float = DEFAULT_TTL,
                 timeout: float = REDIS_TIMEOUT, backoff: tuple[float, float] = BACKOFF) -> ResponseCache:
        """A Redis-backed cache (no connection is made until the first call, so a dead Redis never stops start-up)."""
        return cls(RedisStore(url, namespace, timeout), ttl=ttl, backoff=backoff)

    # ------------------------------------------------------------------------------------ the caller's questions
    def key(self, kind: str, customer_id: str | None = None, **params) -> str:
        """`kind:global_gen.customer_gen:digest`, the digest (of kind, customer and sorted params) keeping the key
        short and the customer's id out of it. Built while the backend is out of reach, it holds "?" for the
        generations and get/set skip it."""
        gens = self._call(self.store.generations, customer_id)
        part = UNAVAILABLE if gens is None else f"{gens[0]}.{gens[1]}"
        body = json.dumps([kind, customer_id, params], sort_keys=True, separators=(",", ":"), default=str)
        return f"{kind}:{part}:{hashlib.blake2b(body.encode(), digest_size=8).hexdigest()}"

    def get(self, key: str) -> dict | None:
        text = self.get_text(key)
        if text is not None:
            try:
                return json.loads(text)
            except ValueError:
                log.warning("response cache: an undecodable entry under %s, treated as a miss", key)
                self._count("errors")
        return None

    def get_text(self, key: str) -> str | None:
        """The entry's JSON text as stored: the API sends it as the body without decoding it."""
        text = None if _unavailable(key) else self._call(self.store.read, key)
        self._count("misses" if text is None else "hits")
        return text

    def holds(self, key: str) -> bool:
        """Whether the entry is there, without counting a hit or a miss (the warmer asks before computing)."""
        return not _unavailable(key) and self._call(self.store.read, key) is not None

    def set(self, key: str, value: dict, ttl: float | None = None) -> str | None:
        """Store `value` for `ttl` seconds (default: the cache's) and return its JSON text. A value that is not
        JSON-able is not cached (an error is counted and logged, None returned): the answer still reaches the
        client."""
        try:
            text = json.dumps(value, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as err:
            log.warning("response cache: cannot encode the answer for %s (%s), not cached", key, err)
            self._count("errors")
            return None
        self.set_text(key, text, ttl)
        return text

    def set_text(self, key: str, text: str, ttl: float | None = None) -> None:
        ttl = self.ttl if ttl is None else min(ttl, self.ttl)
        if not _unavailable(key) and ttl > 0:
            self._call(self.store.write, key, text, ttl)

    def invalidate_customer(self, customer_id: str) -> None:
        """Her events, opt-out or erasure: her cached answers are never served again."""
        self._call(self.store.bump, str(customer_id))

    def invalidate_all(self) -> None:
        """A model activation or a rules change: no cached answer is served again."""
        self._call(self.store.bump, None)

    def stats(self) -> dict:
        with self._lock:
            return {**self._counts, "backend": self.store.name, "degraded": self._degraded}

    # ------------------------------------------------------------------------------------ failing open
    def _call(self, fn, *args):
        """`fn(*args)`, or None when the backend fails or is in its back-off; the first call after a back-off
        probes the backend by bumping the global generation (the recovery rule in the module's docstring)."""
        if self._degraded and not self._may_probe():
            return None
        try:
            if self._degraded:
                self.store.bump(None)
                self._recovered()
            return fn(*args)
        except Exception as err:                 # a cache never raises: any backend failure is a miss
            self._failed(err)
            return None

    def _may_probe(self) -> bool:
        """One caller per back-off gets to try the backend; the others keep missing without waiting on it."""
        with self._lock:
            now = time.monotonic()
            if now < self._retry_at:
                return False
            self._retry_at = now + self._next_backoff
            return True

    def _failed(self, err: Exception) -> None:
        with self._lock:
            self._counts["errors"] += 1
            if not self._degraded:
                log.warning("response cache: %s backend failed (%s: %s); serving without cache for %.1f s",
                            self.store.name, type(err).__name__, err, self._next_backoff)
            else:
                self._next_backoff = min(self._next_backoff * 2, self.backoff[1])
            self._degraded = True
            self._retry_at = time.monotonic() + self._next_backoff

    def _recovered(self) -> None:
        with self._lock:
            self._degraded = False
            self._next_backoff = self.backoff[0]
        log.warning("response cache: %s backend is back; every entry from before the outage is invalidated",
                    self.store.name)

    def _count(self, what: str) -> None:
        with self._lock:
            self._counts[what] += 1


def _unavailable(key: str) -> bool:
    parts = key.rsplit(":", 2)
    return len(parts) == 3 and parts[1] == UNAVAILABLE
