"""CAMMSR against SASRec, with its ablations, side by side on one split; on the demo, its gate against the truth.

    .venv/bin/python bench/bench_cammsr.py --dataset demo --workspace workspace --seeds 0,1,2
    .venv/bin/python bench/bench_cammsr.py --dataset Beauty --seeds 0,1,2
    options: --variants full,no-category,no-swap,no-synergy,single-expert,no-cold,no-coherence,client-gate
             --set key=value (both models)
             --max-minutes M (per fit)   --fits-only (fit and save, evaluate later)   --no-baseline

Each fitted model is saved under bench/out/fits/cammsr_<dataset>/ (keyed by variant, seed and settings) and
reused by later calls with the same settings, so seeds can be fitted by parallel processes (one thread each, with
`--fits-only --set threads=1`) and one last call without `--fits-only` evaluates all of them side by side. A fit
checkpoints every epoch beside it (`.ckpt/`), so a fit cut short (a session's end) resumes where it stopped.

Every model is fitted per seed on the same split and evaluated through `recommend` (demo: temporal, last 30 days,
purchases as targets; Beauty: leave-one-out with item attributes as the categorical modality). Paired Wilcoxon
tests on per-user NDCG@10 averaged over seeds: cammsr vs sasrec and cammsr vs each ablation.

On the demo, the gate of the seed-0 `cammsr` is held against the generator's hidden truth: the Spearman
correlation between each client's visual-minus-textual gate share (her journey, as the encoder fused it) and her
planted `visual_share`, and the per-category mean visual share against the category's planted visual share
(plotted to bench/out/cammsr_demo_gate.png). Writes bench/out/cammsr_<dataset>.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import time

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from common import OUT, seeds, shared_folder, workspace
from vendome.data.splits import split
from vendome.evaluate.run import evaluate
from vendome.models import make_model
from vendome.models.base import Recommender
from vendome.pipeline import parse_settings, peak_memory_mb

VARIANTS = {"full": {}, "no-category": {"category_guidance": False}, "no-swap": {"swap": False},
            "no-synergy": {"synergy": False}, "single-expert": {"single_expert": True},
            "no-cold": {"id_dropout": 0.0, "maturity": False}, "no-coherence": {"coherence": False},
            "client-gate": {"client_gate": True}}
DEFAULTS = {"batch_size": 64, "patience": 5, "epochs": 200, "threads": 2}


def load(args):
    from vendome.data.store import load_dataset
    from vendome.pipeline import training_data
    from vendome.workspace import Workspace

    if args.dataset == "demo":
        data = training_data(Workspace(args.workspace), progress=False)
        return data, split(data, "temporal", test_days=30)
    from vendome.data.ingest import ingest_tables
    from vendome.data.loaders import load as load_format

    ws = workspace(f"amazon_{args.dataset.lower()}")
    if not (ws.root / "vendome.duckdb").exists():
        src = shared_folder("amazon_beauty_sports")
        ingest_tables(load_format("amazon-seq", src / f"{args.dataset}.txt",
                                  attributes=src / f"{args.dataset}_item2attributes.json"), ws,
                      source=f"amazon-seq:{args.dataset}")
    data = load_dataset(ws)
    return data, split(data, "loo")


def gate_vs_truth(model, data, export) -> dict:
    """Correlations of the learned gate with the planted visual shares (clients and categories).

    A client's visual lead is her visual-minus-textual share: with the client gate, of her own weighting pi(u)
    ("own"); and of her journey's steps as the encoder fused them ("journey"), which every variant has."""
    from vendome.data.demo.vocab import CATEGORY_VISUAL_SHARE

    truth = pd.read_csv(export / "truth_customers.csv", keep_default_na=False)
    users = np.flatnonzero([len(s) > 0 for s in model.sequences_.items])
    ids = data.customers["customer_id"].to_numpy()[users]
    planted = truth.set_index("customer_id")["visual_share"].reindex(ids).to_numpy(float)
    shares = {"journey": model.gate_weights(users=users)}
    if getattr(model.net_, "client_gating", False):
        shares["own"] = model.client_weights(users)
    out: dict = {}
    for source, per_user in shares.items():
        lead = (per_user.get("visual", 0) - per_user.get("textual", 0)).to_numpy(float)
        ok = np.isfinite(planted) & np.isfinite(lead)
        deciles = pd.qcut(planted[ok], 10, labels=False)
        by_decile = pd.DataFrame({"planted": planted[ok], "lead": lead[ok], "decile": deciles}).groupby("decile")
        out[f"clients_{source}_spearman"] = float(spearmanr(lead[ok], planted[ok]).statistic)
        out[f"clients_{source}_by_decile"] = by_decile.mean().round(4).reset_index().to_dict("records")
        out["n_clients"] = int(ok.sum())
    out["clients_spearman"] = out.get("clients_own_spearman", out["clients_journey_spearman"])
    per_item = model.gate_weights()
    cat = data.products["category"].to_numpy()[per_item["item"].to_numpy()]
    by_cat = per_item.assign(category=cat).groupby("category")[["visual", "textual"]].mean()
    by_cat["planted_visual_share"] = [CATEGORY_VISUAL_SHARE.get(c, np.nan) for c in by_cat.index]
    rho_cat = spearmanr(by_cat["visual"] - by_cat["textual"], by_cat["planted_visual_share"]).statistic
    return out | {"categories_spearman": float(rho_cat),
                  "by_category": by_cat.round(3).reset_index().to_dict("records")}


def plot_gate(g: dict, path) -> None:
    """Left: clients' visual-minus-textual gate share by decile of planted visual share; right: per category."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.8))
    for source, label in (("own", "her own weighting (client gate)"), ("journey", "her journey's steps")):
        if f"clients_{source}_by_decile" in g:
            d = pd.DataFrame(g[f"clients_{source}_by_decile"])
            a.plot(d["planted"], d["lead"], "o-", label=f"{label}: Spearman {g[f'clients_{source}_spearman']:.2f}")
    a.legend(fontsize=8)
    a.set(xlabel="planted visual share of the client (decile mean)", ylabel="gate: visual - textual share",
          title=f"clients (n = {g['n_clients']})")
    c = pd.DataFrame(g["by_category"])
    b.scatter(c["planted_visual_share"], c["visual"] - c["textual"])
    for _, row in c.iterrows():
        b.annotate(row["category"], (row["planted_visual_share"], row["visual"] - row["textual"]), fontsize=8)
    b.set(xlabel="planted visual share of the category", ylabel="gate: visual - textual share",
          title=f"categories (Spearman {g['categories_spearman']:.2f})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _fit_path(dataset: str, name: str, params: dict, seed: int):
    """Where a fit is kept: the settings that change the model (not threads or progress) name the file."""
    keep = {k: v for k, v in sorted(params.items()) if k not in ("threads", "progress", "checkpoint_dir")}
    key = hashlib.sha1(json.dumps(keep, sort_keys=True, default=str).encode()).hexdigest()[:10]
    slug = name.replace(" ", "").replace("(", "-").replace(")", "")
    return OUT / "fits" / f"cammsr_{dataset.lower()}" / f"{slug}_seed{seed}_{key}.pkl"


def fit_or_load(dataset: str, name: str, model_name: str, params: dict, seed: int, train
                ) -> tuple[Recommender, dict]:
    """The saved fit of these settings and seed, or a new one (saved with its training record)."""
    path = _fit_path(dataset, name, params, seed)
    if path.exists() and path.with_suffix(".json").exists():
        return Recommender.load(path), json.loads(path.with_suffix(".json").read_text())
    t0 = time.perf_counter()
    checkpoints = path.with_suffix(".ckpt")              # an interrupted fit resumes here on the next call
    model = make_model(model_name, seed=seed, **params, checkpoint_dir=str(checkpoints)).fit(train)
    h = model.history_
    info = {"seed": seed, "fit_s": round(time.perf_counter() - t0, 1), "epochs": len(h.losses),
            "best_epoch": h.best_epoch + 1, "stopped": h.stopped,
            "s_per_epoch": round(float(np.mean(h.epoch_seconds)), 1), "validation": h.metrics}
    model.save(path)
    path.with_suffix(".json").write_text(json.dumps(info, default=str))
    shutil.rmtree(checkpoints, ignore_errors=True)
    return model, info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="demo", choices=["demo", "Beauty", "Sports_and_Outdoors"])
    ap.add_argument("--workspace", default="workspace", help="the demo workspace (after `make demo`)")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--max-minutes", type=float, default=None)
    ap.add_argument("--fits-only", action="store_true", help="fit and save the models, skip the evaluation")
    ap.add_argument("--no-baseline", action="store_true",
                    help="leave sasrec out (with --fits-only: another process fits it)")
    args = ap.parse_args()
    data, sp = load(args)
    params = DEFAULTS | parse_settings(args.set) | ({"max_minutes": args.max_minutes} if args.max_minutes else {})
    specs = ({} if args.no_baseline else {"sasrec": ("sasrec", {})}) | {
        ("cammsr" if v == "full" else f"cammsr ({v})"): ("cammsr", VARIANTS[v]) for v in args.variants.split(",") if v}
    fitted: dict[str, dict[int, object]] = {name: {} for name in specs}
    fits: dict[str, list[dict]] = {name: [] for name in specs}
    t_all = time.perf_counter()
    for seed in seeds(args.seeds):
        for name, (model_name, extra) in specs.items():
            fitted[name][seed], info = fit_or_load(args.dataset, name, model_name, params | extra, seed, sp.train)
            fits[name].append(info)
            print(f"{name} seed {seed}: {fits[name][-1]}", flush=True)
    if args.fits_only:
        return
    pairs = [("cammsr", n) for n in specs if n != "cammsr"] if "cammsr" in specs else []
    rep = evaluate(sp, fitted, progress=False, pairs=pairs)
    out = {"dataset": args.dataset, "params": params, "split": sp.info, "fits": fits,
           "models": {n: {k: rep["models"][n].get(k) for k in ("hr@10", "ndcg@10", "recall@10", "ndcg@20")}
                      for n in specs}, "significance": rep.get("significance", {}).get("pairs", [])}
    base = rep["models"]["sasrec"]["ndcg@10"] if "sasrec" in specs else float("nan")
    print(f"\n{'model':<26} {'NDCG@10':>8} {'HR@10':>7} {'vs sasrec':>9}")
    for n in specs:
        m = rep["models"][n]
        print(f"{n:<26} {m['ndcg@10']:>8.4f} {m['hr@10']:>7.4f} {m['ndcg@10'] / base - 1:>+9.1%}")
    for row in out["significance"]:
        print(f"  {row.get('verdict', row)}")
    if args.dataset == "demo" and "cammsr" in fitted:
        from vendome.workspace import Workspace

        out["gate_vs_truth"] = gate_vs_truth(fitted["cammsr"][min(fitted["cammsr"])], data,
                                             Workspace(args.workspace).root / "export")
        g = out["gate_vs_truth"]
        print(f"\ngate vs planted truth (n={g['n_clients']} clients): clients Spearman, own weighting "
              f"{g.get('clients_own_spearman', float('nan')):.3f}, journey steps {g['clients_journey_spearman']:.3f}; "
              f"categories Spearman {g['categories_spearman']:.3f}")
        print(pd.DataFrame(g["by_category"]).to_string(index=False))
        plot_gate(g, OUT / "cammsr_demo_gate.png")
    out["seconds"] = round(time.perf_counter() - t_all, 1)
    out["peak_memory_mb"] = round(peak_memory_mb())
    path = OUT / f"cammsr_{args.dataset.lower()}.json"
    path.write_text(json.dumps(out, indent=2, default=str))
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
