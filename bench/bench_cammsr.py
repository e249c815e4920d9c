"""CAMMSR against SASRec, with its ablations, side by side on one split; on the demo, its gate against the truth.

    .venv/bin/python bench/bench_cammsr.py --dataset demo --workspace workspace --seeds 0,1,2
    .venv/bin/python bench/bench_cammsr.py --dataset Beauty --seeds 0,1,2
    options: --variants full,no-category,no-swap,no-synergy,single-expert,no-cold,no-coherence,client-gate,routed,
                       next-attributes,side-attention,dif
             --set key=value (both models)
             --max-minutes M (per fit)   --fits-only (fit and save, evaluate later)   --no-baseline
             --tag demo_large (names the fits and the report: another workspace of the same dataset)
             --from-records (no fitting: the paired tests over every seed recorded in bench/records)

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

Seeds add up across sessions: every evaluation also records each (model, seed)'s per-user NDCG@10 and HR@10, with
the commit that produced it, in bench/records/cammsr_<tag>.csv.gz (kept in git; fits are not: they are large and
bench/out does not outlive a session). `--from-records` runs the paired tests on the seed-averaged per-user
metrics of every model that has the seeds asked for, so a slow dataset's three seeds can be fitted in different
sessions and still be tested as one (the fits are deterministic per seed: a refit reproduces its record).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from common import OUT, seeds, shared_folder, workspace
from vendome.data.splits import split
from vendome.evaluate.run import evaluate
from vendome.evaluate.significance import paired_test
from vendome.models import make_model
from vendome.models.base import Recommender
from vendome.pipeline import parse_settings, peak_memory_mb

VARIANTS = {"full": {}, "no-category": {"category_guidance": False}, "no-swap": {"swap": False},
            "no-synergy": {"synergy": False}, "single-expert": {"single_expert": True},
            "no-cold": {"id_dropout": 0.0, "maturity": False}, "no-coherence": {"coherence": False},
            "client-gate": {"client_gate": True}, "routed": {"client_gate": True, "lambda_route": 0.5},
            "next-attributes": {"lambda_next": 0.5}, "side-attention": {"side_attention": True},
            "dif": {"side_attention": True, "lambda_next": 0.5}}
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


RECORDS = Path(__file__).resolve().parent / "records"
RECORDED = ("ndcg@10", "hr@10")


def record_per_user(tag: str, sp, fitted: dict[str, dict[int, Recommender]], users: np.ndarray) -> Path:
    """Upsert each (model, seed)'s per-user metrics into bench/records/cammsr_<tag>.csv.gz, with the commit."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=RECORDS.parent).stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True,
                           cwd=RECORDS.parent).stdout.strip()
    frames = []
    for name, by_seed in fitted.items():
        for seed, model in by_seed.items():
            per_user = evaluate(sp, {name: model}, progress=False)["per_user"]
            frames.append(pd.DataFrame({"model": name, "seed": seed, "user": users[per_user["users"]],
                                        **{m: per_user["models"][name][m] for m in RECORDED},
                                        "commit": commit + ("+" if dirty else ""), "date": str(date.today())}))
    path = RECORDS / f"cammsr_{tag}.csv.gz"
    new = pd.concat(frames)
    if path.exists():
        old = pd.read_csv(path, keep_default_na=False)
        done = set(zip(new["model"], new["seed"], strict=True))
        keep = [(m, s) not in done for m, s in zip(old["model"], old["seed"], strict=True)]
        new = pd.concat([old[keep], new])
    RECORDS.mkdir(exist_ok=True)
    tmp = path.with_suffix(".tmp.gz")
    new.round(6).to_csv(tmp, index=False)
    tmp.replace(path)                                   # a cut-short write never leaves half a record
    return path


def from_records(tag: str, wanted: tuple[int, ...]) -> None:
    """The paired tests on the seed-averaged per-user NDCG@10 of every recorded model with all `wanted` seeds."""
    path = RECORDS / f"cammsr_{tag}.csv.gz"
    if not path.exists():
        raise SystemExit(f"{path} not found: evaluate some fits first (without --fits-only)")
    rec = pd.read_csv(path, keep_default_na=False)
    rec = rec[rec["seed"].isin(wanted)]
    have = rec.groupby("model")["seed"].nunique()
    models = [m for m in have.index if have[m] == len(wanted)]
    lead = "cammsr" if "cammsr" in models else next((m for m in models if m != "sasrec"), None)
    if lead is None:
        raise SystemExit(f"{path}: no cammsr variant has all of seeds {wanted}; recorded: "
                         f"{rec.groupby('model')['seed'].unique().to_dict()}")
    print(f"{path.name}: seeds {wanted}; commits {sorted(set(rec['commit']))}")
    mean = {m: rec[rec["model"] == m].groupby("user")[list(RECORDED)].mean() for m in models}
    per_seed = {m: rec[rec["model"] == m].groupby("seed")["ndcg@10"].mean() for m in models}
    base = mean["sasrec"]["ndcg@10"].mean() if "sasrec" in mean else float("nan")
    print(f"\n{'model':<26} {'NDCG@10':>8} {'HR@10':>7} {'vs sasrec':>9}  NDCG@10 per seed")
    for m in models:
        seeds_text = ", ".join(f"{v:.4f}" for v in per_seed[m])
        print(f"{m:<26} {mean[m]['ndcg@10'].mean():>8.4f} {mean[m]['hr@10'].mean():>7.4f} "
              f"{mean[m]['ndcg@10'].mean() / base - 1:>+9.1%}  {seeds_text}")
    for m in models:
        if m == lead:
            continue
        a, b = mean[lead]["ndcg@10"], mean[m]["ndcg@10"]
        if not a.index.equals(b.index):
            raise SystemExit(f"{path}: {lead} and {m} were recorded on different test users (another split?)")
        t = paired_test(a.to_numpy(), b.to_numpy())
        print(f"  {lead} vs {m}: {t['mean_a']:.4f} vs {t['mean_b']:.4f} ({t['mean_a'] / t['mean_b'] - 1:+.1%}), "
              f"n = {t['n']} users ({t['n_differ']} differ), Wilcoxon p = {t['wilcoxon_p']:.3g}, "
              f"paired t p = {t['ttest_p']:.3g}")


def _fit_path(tag: str, name: str, params: dict, seed: int):
    """Where a fit is kept: the settings that change the model (not threads or progress) name the file."""
    keep = {k: v for k, v in sorted(params.items()) if k not in ("threads", "progress", "checkpoint_dir")}
    key = hashlib.sha1(json.dumps(keep, sort_keys=True, default=str).encode()).hexdigest()[:10]
    slug = name.replace(" ", "").replace("(", "-").replace(")", "")
    return OUT / "fits" / f"cammsr_{tag.lower()}" / f"{slug}_seed{seed}_{key}.pkl"


def fit_or_load(tag: str, name: str, model_name: str, params: dict, seed: int, train
                ) -> tuple[Recommender, dict]:
    """The saved fit of these settings and seed, or a new one (saved with its training record)."""
    path = _fit_path(tag, name, params, seed)
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
    ap.add_argument("--tag", default=None, help="names the fits and the report (default: the dataset); give "
                    "another workspace of the demo its own, e.g. demo_large")
    ap.add_argument("--max-minutes", type=float, default=None)
    ap.add_argument("--fits-only", action="store_true", help="fit and save the models, skip the evaluation")
    ap.add_argument("--from-records", action="store_true",
                    help="fit nothing: the paired tests over the seeds recorded in bench/records for this tag")
    ap.add_argument("--no-baseline", action="store_true",
                    help="leave sasrec out (with --fits-only: another process fits it)")
    args = ap.parse_args()
    tag = (args.tag or args.dataset).lower()
    if args.from_records:
        from_records(tag, seeds(args.seeds))
        return
    data, sp = load(args)
    params = DEFAULTS | parse_settings(args.set) | ({"max_minutes": args.max_minutes} if args.max_minutes else {})
    specs = ({} if args.no_baseline else {"sasrec": ("sasrec", {})}) | {
        ("cammsr" if v == "full" else f"cammsr ({v})"): ("cammsr", VARIANTS[v]) for v in args.variants.split(",") if v}
    fitted: dict[str, dict[int, object]] = {name: {} for name in specs}
    fits: dict[str, list[dict]] = {name: [] for name in specs}
    t_all = time.perf_counter()
    for seed in seeds(args.seeds):
        for name, (model_name, extra) in specs.items():
            fitted[name][seed], info = fit_or_load(tag, name, model_name, params | extra, seed, sp.train)
            fits[name].append(info)
            print(f"{name} seed {seed}: {fits[name][-1]}", flush=True)
    if args.fits_only:
        return
    lead = "cammsr" if "cammsr" in specs else next((n for n in specs if n != "sasrec"), None)
    pairs = [(lead, n) for n in specs if n != lead] if lead else []
    rep = evaluate(sp, fitted, progress=False, pairs=pairs)
    print(f"recorded per-user metrics in {record_per_user(tag, sp, fitted, data.customers['customer_id'].to_numpy())}")
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
        plot_gate(g, OUT / f"cammsr_{tag}_gate.png")
    out["seconds"] = round(time.perf_counter() - t_all, 1)
    out["peak_memory_mb"] = round(peak_memory_mb())
    path = OUT / f"cammsr_{tag}.json"
    path.write_text(json.dumps(out, indent=2, default=str))
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
