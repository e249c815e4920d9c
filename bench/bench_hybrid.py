"""The hybrid's two blenders side by side with its components, on the demo boutique (temporal, last 30 days).

    .venv/bin/python bench/bench_hybrid.py --workspace workspace --seeds 0,1,2

One split, every model fitted per seed, paired Wilcoxon tests on per-user NDCG@10: the stacked hybrid (the
default) against each component and against the linear blend (one simplex weight per component). Prints the
stacked blender's validation record (windows, leave-one-month-out NDCG per L2 strength, coefficients) and writes
bench/out/hybrid_<workspace folder name>.json.
"""

from __future__ import annotations

import argparse
import json

from common import OUT, seeds
from vendome.data.splits import split
from vendome.evaluate.report import to_jsonable
from vendome.evaluate.run import run_protocol
from vendome.models import make_model
from vendome.pipeline import training_data
from vendome.workspace import Workspace

COMPONENTS = ("als", "content-visual", "content-attributes", "pop-segment", "pop-recent")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workspace", default="workspace")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--test-days", type=float, default=30)
    args = ap.parse_args()
    data = training_data(Workspace(args.workspace), progress=False)
    specs = {name: {} for name in COMPONENTS}
    specs |= {"hybrid": {}, "hybrid-linear": {"model": "hybrid", "blender": "linear"}}
    pairs = [("hybrid", other) for other in (*COMPONENTS, "hybrid-linear")]
    report = run_protocol(data, specs, "temporal", seeds=seeds(args.seeds), test_days=args.test_days, pairs=pairs)
    print(f"\n{'model':<20} {'ndcg@10':>8} {'hr@10':>8} {'new-item recall@10':>19} {'fit s':>7}")
    for name, m in report["models"].items():
        new = m["slices"]["new_items"]["recall@10"] or 0.0
        print(f"{name:<20} {m['ndcg@10']:>8.4f} {m['hr@10']:>8.4f} {new:>19.4f} {m['fit_seconds']:>7.1f}")
    print()
    for row in report["significance"]["pairs"]:
        print(f"{row['a']} vs {row['b']}: {row['mean_a']:.4f} vs {row['mean_b']:.4f}, p = {row['wilcoxon_p']:.2g}")
    outer = split(data, "temporal", test_days=args.test_days)
    stacked = make_model("hybrid", seed=0).fit(outer.train)
    record = {k: stacked.tuning_[k] for k in ("validation", "single", "blend", "C", "cv_ndcg", "coefficients")}
    print("\nstacked blender, seed 0:", json.dumps({k: record[k] for k in ("single", "blend", "cv_ndcg")}, indent=1))
    OUT.mkdir(parents=True, exist_ok=True)
    out = OUT / f"hybrid_{args.workspace.rstrip('/').split('/')[-1]}.json"
    out.write_text(json.dumps(to_jsonable({"report": report, "stacked_seed0": record}), indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
