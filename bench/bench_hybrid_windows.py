"""Why the hybrid does not beat ALS on the demo: its validation-tuned blend, applied to the validation month and to
the test month side by side, per user slice.

    .venv/bin/python bench/bench_hybrid_windows.py --workspace workspace

Tunes the hybrid as `fit` does (on the month before the test month), then evaluates ALS, content-text and the
hybrid with those weights frozen on both months through the serving path. A blend that gains on validation and
loses on test points at the tuning, not at the components.
"""

from __future__ import annotations

import argparse

from vendome.data.splits import split
from vendome.evaluate.run import run_protocol
from vendome.models import make_model
from vendome.pipeline import training_data
from vendome.workspace import Workspace


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workspace", default="workspace")
    ap.add_argument("--test-days", type=float, default=30)
    args = ap.parse_args()
    data = training_data(Workspace(args.workspace), progress=False)
    outer = split(data, "temporal", test_days=args.test_days)
    tuned = make_model("hybrid").fit(outer.train)
    print(f"tuned on the validation month: weights {tuned.weights_}, collaborative {tuned.tuning_['collaborative']}")
    frozen = {"model": "hybrid", "weights": tuned.weights_, "collaborative": tuned.tuning_["collaborative"]}
    specs = {tuned.tuning_["collaborative"]: {}, "content-text": {}, "hybrid (frozen weights)": frozen}
    for label, d in (("validation month", outer.train), ("test month", data)):
        rep = run_protocol(d, specs, "temporal", seeds=(0,), test_days=args.test_days, progress=False)
        info = rep["dataset"]["split"]
        print(f"\n{label}: {info['n_test_users']} users, {info['n_test_targets']} targets")
        print(f"  {'model':<24} {'ndcg@10':>8} {'regular':>8} {'heavy':>8} {'new-item recall@10':>19}")
        for name, m in rep["models"].items():
            sl = m["slices"]
            print(f"  {name:<24} {m['ndcg@10']:>8.4f} {sl['regular']['ndcg@10'] or 0:>8.4f} "
                  f"{sl['heavy']['ndcg@10'] or 0:>8.4f} {sl['new_items']['recall@10'] or 0:>19.4f}")


if __name__ == "__main__":
    main()
