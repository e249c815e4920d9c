"""Tmall multi-behavior benchmark (MB-CGCN release): the format's own split, full ranking, classic baselines.

    .venv/bin/python bench/bench_tmall.py [--models pop,itemknn,als,bpr,ease] [--seeds 0]

Views, carts and training purchases are training signal (behavior-weighted); each user's held-out purchase in
buy_test.txt is the test (`given` protocol), the user's training purchases excluded from the ranking. The baseline
table for the multi-behavior models of a later issue. Writes bench/out/tmall.json and .html.
"""

from __future__ import annotations

import os
import time

from common import OUT, parser, seeds, shared_folder, workspace
from vendome.data.ingest import ingest_tables
from vendome.data.loaders import load
from vendome.evaluate.report import format_markdown, format_table
from vendome.pipeline import evaluate_workspace, peak_memory_mb


def main() -> None:
    args = parser(__doc__, "pop,itemknn,als,bpr,ease").parse_args()
    src = shared_folder("tmall_mbcgcn_view_cart_buy")
    ws = workspace("tmall")
    t0 = time.perf_counter()
    print(ingest_tables(load("mbgcn", src), ws, source="mbgcn:tmall"))
    report = evaluate_workspace(ws, [m for m in args.models.split(",") if m], "given",
                                seeds=seeds(args.seeds),
                                json_path=OUT / "tmall.json", html_path=OUT / "tmall.html")
    print(format_table(report))
    print(f"\n{os.cpu_count()} cores; total {time.perf_counter() - t0:.1f} s; peak memory {peak_memory_mb():.0f} MB\n")
    print(format_markdown(report))


if __name__ == "__main__":
    main()
