"""The hidden structure of the demo boutique: parameters, the taste utility, and how the truth is written and read.

Models never read these files; tests and benchmarks do, to check that a model recovers what was planted (taste,
visual vs textual lead, price tier, collection loyalty, complementary sets, seasons, new arrivals).
`utility` is the one formula both the simulator and any oracle use, so the truth cannot drift from the data.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from vendome.data.demo.vocab import CATEGORIES, CATEGORY_VISUAL_SHARE

GENDER_CODES = {"women": 0, "men": 1, "unisex": 2}
BUYER_CODES = {"female": 0, "male": 1, "unspecified": -1}


@dataclass(frozen=True)
class Params:
    """Coefficients of the taste utility and of the behaviours layered on it."""

    material: float = 0.7          # weight of the material match
    stone: float = 0.5             # weight of the stone match
    color: float = 0.5             # weight of the colour match
    style: float = 2.0             # weight of w * motif match + (1 - w) * technique match
    customer_visual_weight: float = 0.5   # w = 0.5 * client visual_share + 0.5 * category visual share
    tier_up: float = 1.4           # penalty per tier above the client's
    tier_down: float = 0.8         # penalty per tier below the client's
    gender_mismatch: float = -3.0  # a piece made for the other gender (unless it is a gift for them)
    fav_collection: float = 1.0    # bonus for the client's favourite collection
    loyalty_step: float = 0.8      # bonus added to a collection after each purchase in it
    loyalty_max: float = 2.0
    gift_taste: float = 0.5        # a gift follows the giver's own taste only half as much
    burst: float = 1.5             # attention bonus of a collection launched during the window ...
    burst_days: float = 25.0       # ... decaying with this time constant
    complement_p: float = 0.45     # chance that a necklace or bag purchase is followed by its complement
    complement_days: float = 18.0  # mean delay (days) before that follow-up visit
    complement_bonus: float = 3.0


PARAMS = Params()


def utility(c: dict[str, np.ndarray], it: dict[str, np.ndarray], p: Params = PARAMS, gift: bool = False
            ) -> np.ndarray:
    """Static utility (n_clients, n_items) of every item for the clients in `c`.

    u = bias + material + stone + colour + style(w) - tier distance + gender + favourite collection, where
    style(w) = w * motif taste + (1 - w) * technique taste and w mixes the client's and the category's visual share.
    `c` holds taste matrices (material, stone, color, motif, technique: (n, vocab)), tier, visual_share, gender
    (buyer codes) and fav_collection; `it` holds item index arrays (mat, stone, color, motif, tech, cat, tier,
    gender, bias, coll). For a gift, `c["gender"]` is the recipient's and personal taste counts `gift_taste` times.
    """
    scale = p.gift_taste if gift else 1.0
    cat_share = np.array([CATEGORY_VISUAL_SHARE[k] for k in CATEGORIES])[it["cat"]]
    w = p.customer_visual_weight * c["visual_share"][:, None] + (1 - p.customer_visual_weight) * cat_share[None, :]
    u = (p.material * c["material"][:, it["mat"]] + p.stone * c["stone"][:, it["stone"]]
         + p.color * c["color"][:, it["color"]]
         + p.style * (w * c["motif"][:, it["motif"]] + (1 - w) * c["technique"][:, it["tech"]])) * scale
    d = it["tier"][None, :] - c["tier"][:, None]
    u -= np.where(d > 0, p.tier_up * d, -p.tier_down * d)
    g = c["gender"][:, None]
    u += np.where((it["gender"][None, :] != 2) & (g >= 0) & (it["gender"][None, :] != g), p.gender_mismatch, 0.0)
    u += np.where(it["coll"][None, :] == c["fav_collection"][:, None], p.fav_collection * scale, 0.0)
    return (u + it["bias"][None, :]).astype(np.float32)


def item_arrays(tp: pd.DataFrame) -> dict[str, np.ndarray]:
    """Item index arrays for `utility`, from the product truth table."""
    return {
        "cat": tp["cat_idx"].to_numpy(int), "mat": tp["mat_idx"].to_numpy(int), "stone": tp["stone_idx"].to_numpy(int),
        "color": tp["color_idx"].to_numpy(int), "motif": tp["motif_idx"].to_numpy(int),
        "tech": tp["tech_idx"].to_numpy(int), "tier": tp["tier"].to_numpy(int),
        "gender": tp["gender"].map(GENDER_CODES).to_numpy(int), "bias": tp["bias"].to_numpy(float),
        "coll": tp["coll_idx"].to_numpy(int),
    }


def client_arrays(tc: pd.DataFrame) -> dict[str, np.ndarray]:
    """Client taste arrays for `utility`, from the client truth table."""
    out: dict[str, np.ndarray] = {}
    for name in ("material", "stone", "color", "motif", "technique"):
        cols = [c for c in tc.columns if c.startswith(f"taste_{name}_")]
        out[name] = tc[cols].to_numpy(float)
    out["tier"] = tc["tier"].to_numpy(int)
    out["visual_share"] = tc["visual_share"].to_numpy(float)
    out["gender"] = tc["gender"].map(BUYER_CODES).to_numpy(int)
    out["fav_collection"] = tc["fav_collection_idx"].to_numpy(int)
    return out


def read_truth(folder: str | Path) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """(truth.json, truth_customers, truth_products) of a generated boutique."""
    folder = Path(folder)
    truth = json.loads((folder / "truth.json").read_text(encoding="utf-8"))
    tc = pd.read_csv(folder / "truth_customers.csv", keep_default_na=False)
    tp = pd.read_csv(folder / "truth_products.csv", keep_default_na=False)
    return truth, tc, tp


def oracle_utility(folder: str | Path) -> np.ndarray:
    """(n_customers, n_products) static taste utility from the written truth, rows and columns in file order."""
    truth, tc, tp = read_truth(folder)
    return utility(client_arrays(tc), item_arrays(tp), Params(**truth["params"]))


def params_dict(p: Params = PARAMS) -> dict:
    return asdict(p)
