"""The response cache: a hit after a set and a miss after the TTL, in-process and in Redis; invalidation per
customer and for all, seen by every process sharing a Redis; and a Redis that is absent, dies or hangs costs a
miss within the timeout, never an error, and never serves after the outage what was cached before it."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis

from vendome.serve.cache import ResponseCache

REDIS_URL = os.environ.get("VENDOME_TEST_REDIS", "redis://127.0.0.1:6379/0")
FAST = 0.150                      # seconds: the most a call may take against a Redis that is not answering
BACKOFF = (0.2, 0.4)              # short back-off so the recovery tests stay fast
ANSWER = {"customer_id": "c1", "placement": "home", "items": [
    {"product_id": "R1", "title": "Serpent ring", "price": 2400.0, "score": 0.91,
     "reason": {"code": "similar_purchase", "text": "because you bought the Serpent pendant"}}]}


def answer(tag: str) -> dict:
    return {**ANSWER, "tag": tag}


def free_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound by the OS, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(call: Callable, *args, **kwargs):
    t0 = time.perf_counter()
    out = call(*args, **kwargs)
    return out, time.perf_counter() - t0


def drop_namespace(client: redis.Redis, namespace: str) -> None:
    keys = list(client.scan_iter(match=f"vendome:{namespace}:*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture(scope="module")
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=0.5, socket_connect_timeout=0.5, decode_responses=True)
    try:
        client.ping()
    except redis.RedisError as err:
        pytest.skip(f"no Redis at {REDIS_URL} ({err}); the Redis cache tests need one (set VENDOME_TEST_REDIS)")
    yield client
    client.close()


@pytest.fixture
def namespace(redis_client: redis.Redis) -> Iterator[str]:
    ns = f"test-{uuid.uuid4().hex}"
    yield ns
    drop_namespace(redis_client, ns)


@pytest.fixture(params=["memory", "redis"])
def make_cache(request) -> Callable[..., ResponseCache]:
    """Builds caches of one backend; the Redis ones of a test share one fresh namespace."""
    if request.param == "memory":
        return lambda **kw: ResponseCache(**kw)
    ns = request.getfixturevalue("namespace")
    return lambda **kw: ResponseCache.from_url(REDIS_URL, namespace=ns, **kw)


class PrivateRedis:
    """A redis-server of this test's own on a free port, without persistence, that can be killed and restarted."""

    def __init__(self, binary: str, workdir) -> None:
        self.binary, self.workdir = binary, workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.started: list[subprocess.Popen] = []

    def start(self) -> subprocess.Popen:
        proc = subprocess.Popen([self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                 "--appendonly", "no", "--dir", str(self.workdir)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.started.append(proc)
        probe = redis.Redis(port=self.port, socket_timeout=0.2, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 5
        while True:
            try:
                probe.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.02)
        probe.close()
        return proc

    def stop_all(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                proc.kill()
            proc.wait()


@pytest.fixture
def redis_server(tmp_path) -> Iterator[PrivateRedis]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not on PATH")
    server = PrivateRedis(binary, tmp_path)
    yield server
    server.stop_all()


# ---------------------------------------------------------------------------------------------------- keys
def test_a_key_is_stable_short_and_does_not_spell_the_customer_id():
    cache = ResponseCache()
    k = cache.key("for_you", "C000123", k=10, placement="home")
    assert k == cache.key("for_you", "C000123", placement="home", k=10)
    assert k != cache.key("for_you", "C000123", k=12, placement="home")
    assert k != cache.key("for_you", "C000124", k=10, placement="home")
    assert k != cache.key("product", "C000123", k=10, placement="home")
    assert "C000123" not in k and len(k) < 40


# ---------------------------------------------------------------------------------------------------- both backends
def test_a_set_answer_is_served_until_its_ttl(make_cache):
    cache = make_cache()
    k = cache.key("for_you", "c1", k=10)
    assert cache.get(k) is None
    cache.set(k, ANSWER)
    assert cache.get(k) == ANSWER
    cache.set(k, ANSWER, ttl=0.05)
    time.sleep(0.12)
    assert cache.get(k) is None
    stats = cache.stats()
    assert (stats["hits"], stats["misses"], stats["errors"], stats["degraded"]) == (1, 2, 0, False)


def test_invalidating_a_customer_leaves_the_others_cached(make_cache):
    cache = make_cache()
    cache.set(cache.key("for_you", "c1"), answer("c1"))
    cache.set(cache.key("for_you", "c2"), answer("c2"))
    cache.set(cache.key("product", None, p="R1"), answer("None"))
    cache.invalidate_customer("c1")
    assert cache.get(cache.key("for_you", "c1")) is None
    assert cache.get(cache.key("for_you", "c2")) == answer("c2")
    assert cache.get(cache.key("product", None, p="R1")) == answer("None")


def test_invalidating_all_reaches_every_answer(make_cache):
    cache = make_cache()
    for who in ("c1", "c2", None):
        cache.set(cache.key("for_you", who), answer(str(who)))
    cache.invalidate_all()
    assert all(cache.get(cache.key("for_you", who)) is None for who in ("c1", "c2", None))


def test_an_answer_computed_across_an_invalidation_is_never_served(make_cache):
    cache = make_cache()
    k = cache.key("for_you", "c1")          # read before her event arrives
    cache.invalidate_customer("c1")          # her event
    cache.set(k, answer("computed from the old history"))
    assert cache.get(cache.key("for_you", "c1")) is None


def test_an_answer_that_is_not_json_is_not_cached_and_does_not_raise(make_cache):
    cache = make_cache()
    k = cache.key("for_you", "c1")
    cache.set(k, {"items": [object()]})
    assert cache.get(k) is None and cache.stats()["errors"] == 1 and not cache.stats()["degraded"]


# ---------------------------------------------------------------------------------------------------- in-process
def test_the_in_process_cache_evicts_the_least_recently_used():
    cache = ResponseCache(max_entries=2)
    a, b, c = (cache.key("for_you", x) for x in "abc")
    cache.set(a, answer("a"))
    cache.set(b, answer("b"))
    assert cache.get(a) == answer("a")       # a is now more recent than b
    cache.set(c, answer("c"))
    assert cache.get(b) is None
    assert cache.get(a) == answer("a") and cache.get(c) == answer("c")
    assert len(cache.store) == 2


def test_the_in_process_cache_hands_out_copies():
    cache = ResponseCache()
    k = cache.key("for_you", "c1")
    cache.set(k, ANSWER)
    cache.get(k)["items"].clear()
    assert cache.get(k) == ANSWER


# ---------------------------------------------------------------------------------------------------- Redis
def test_redis_holds_json_with_a_ttl_under_the_namespace(redis_client, namespace):
    cache = ResponseCache.from_url(REDIS_URL, namespace=namespace)
    k = cache.key("for_you", "c1")
    cache.set(k, ANSWER, ttl=30)
    cache.invalidate_customer("c2")
    raw = f"vendome:{namespace}:r:{k}"
    assert redis_client.get(raw) is not None and 0 < redis_client.pttl(raw) <= 30_000
    counters = list(redis_client.keys(f"vendome:{namespace}:gen:*"))
    assert len(counters) == 1 and redis_client.get(counters[0]) == "1"
    assert redis_client.get(f"vendome:{namespace}:gen:c2") is None               # named by a digest, not the id


def test_processes_sharing_a_redis_see_each_others_invalidations(namespace):
    one = ResponseCache.from_url(REDIS_URL, namespace=namespace)
    two = ResponseCache.from_url(REDIS_URL, namespace=namespace)
    one.set(one.key("for_you", "c1"), answer("c1"))
    one.set(one.key("for_you", "c2"), answer("c2"))
    assert two.get(two.key("for_you", "c1")) == answer("c1")

    two.invalidate_customer("c1")
    assert one.get(one.key("for_you", "c1")) is None
    assert one.get(one.key("for_you", "c2")) == answer("c2")

    one.invalidate_all()
    assert two.get(two.key("for_you", "c2")) is None


def test_namespaces_do_not_share_answers(redis_client):
    a, b = f"test-{uuid.uuid4().hex}", f"test-{uuid.uuid4().hex}"
    try:
        one, two = (ResponseCache.from_url(REDIS_URL, namespace=ns) for ns in (a, b))
        one.set(one.key("for_you", "c1"), ANSWER)
        assert two.get(two.key("for_you", "c1")) is None
    finally:
        drop_namespace(redis_client, a)
        drop_namespace(redis_client, b)


# ---------------------------------------------------------------------------------------------------- failing open
def test_a_redis_that_is_not_there_is_a_fast_miss_and_is_tried_again_after_the_backoff():
    cache = ResponseCache.from_url(f"redis://127.0.0.1:{free_port()}/0", namespace="absent", backoff=BACKOFF)
    k, took = timed(cache.key, "for_you", "c1", k=10)
    assert took < FAST and cache.stats()["degraded"] and cache.stats()["errors"] == 1
    for call, args in [(cache.get, (k,)), (cache.set_text, (k, '{"a":1}')), (cache.invalidate_customer, ("c1",)),
                       (cache.invalidate_all, ()), (cache.get, ("for_you:3.1:0123abcd",))]:
        out, took = timed(call, *args)
        assert out is None and took < FAST, call.__name__
    assert cache.stats()["errors"] == 1                  # inside the back-off, Redis is left alone

    time.sleep(BACKOFF[0] + 0.05)
    assert cache.get("for_you:3.1:0123abcd") is None
    stats = cache.stats()
    assert stats["errors"] == 2 and stats["degraded"] and stats["backend"] == "redis"


def test_a_redis_killed_mid_run_fails_open_then_recovers(redis_server):
    proc = redis_server.start()
    cache = ResponseCache.from_url(redis_server.url, namespace="killed", backoff=BACKOFF)
    before = cache.key("for_you", "c1")
    cache.set(before, answer("before"))
    assert cache.get(before) == answer("before")

    proc.kill()
    proc.wait()
    for call, args in [(cache.get, (before,)), (cache.set_text, (before, '{"a":1}')),
                       (cache.invalidate_customer, ("c1",))]:
        out, took = timed(call, *args)
        assert out is None and took < FAST, call.__name__
    assert cache.stats()["degraded"] and cache.stats()["errors"] == 1

    redis_server.start()                                  # the same port, an empty Redis
    time.sleep(BACKOFF[0] + 0.05)
    after = cache.key("for_you", "c1")
    assert not cache.stats()["degraded"]
    assert after != before and cache.get(before) is None and cache.get(after) is None
    cache.set(after, answer("after"))
    assert cache.get(after) == answer("after")


def test_a_hung_redis_fails_open_and_what_was_cached_before_is_not_served_after(redis_server):
    proc = redis_server.start()
    cache = ResponseCache.from_url(redis_server.url, namespace="hung", backoff=BACKOFF)
    watcher = ResponseCache.from_url(redis_server.url, namespace="hung", backoff=BACKOFF)
    home, page = cache.key("for_you", "c1"), cache.key("product", None, p="R1")
    cache.set(home, answer("before her purchase"))
    cache.set(page, answer("before the new rules"))

    os.kill(proc.pid, signal.SIGSTOP)                     # keeps its data, answers nothing: reads time out
    try:
        # the get times out (a read, harmless if Redis runs it later); the invalidations, in the back-off, never
        # reach Redis: only the recovery rule can keep the two answers from being served afterwards
        for call, args in [(cache.get, (home,)), (cache.invalidate_customer, ("c1",)), (cache.invalidate_all, ())]:
            out, took = timed(call, *args)
            assert out is None and took < FAST, call.__name__
        assert cache.stats()["degraded"]
    finally:
        os.kill(proc.pid, signal.SIGCONT)

    time.sleep(BACKOFF[0] + 0.05)
    assert cache.get(cache.key("for_you", "c1")) is None
    assert cache.get(cache.key("product", None, p="R1")) is None
    assert not cache.stats()["degraded"]
    assert watcher.get(watcher.key("for_you", "c1")) is None     # the bump reached every process on this Redis
