"""What the boutique's clients wrote and what their sales associates noted, generated from the hidden truth.

Each client's motivations are read off her hidden tastes and her orders: the metal she favours (rose gold, yellow
gold or a white metal), the stone she seeks and the one she refuses, gift-giving and its occasions, a care for the
house's savoir-faire (a taste for hand-finished, heritage or bespoke pieces, which only the copy tells) and an eye
on the price (entry tier). Those same tastes drive her purchases, so the texts carry signal the clicks carry too;
what they add is most visible for clients with short histories. Notes are written at a random time of the year by
an associate, 15% of them wrong about the metal (associates misremember); reviews follow a fifth of completed
order lines by 3-20 days. `truth_motivations.csv` lists each client's planted motivations.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vendome.data.demo.customers import Tastes
from vendome.data.demo.vocab import MATERIALS, STONES, TECHNIQUES, TIERS

DAY = 86_400
METAL_LABEL = {"yellow gold": "yellow gold", "rose gold": "rose gold", "white gold": "white metals",
               "platinum": "white metals", "silver": "white metals"}
STONE_LABEL = {"diamond": "diamonds", "pearl": "pearls", "ruby": "coloured stones", "sapphire": "coloured stones",
               "emerald": "coloured stones"}
CRAFT = ("hand-finished", "heritage", "bespoke")
NOTE_SHARE, REVIEW_SHARE, WRONG_METAL, INTENT_SHARE = 0.55, 0.2, 0.15, 0.3
AUTHORS = ("SA Place Vendôme", "SA Avenue Montaigne", "SA Bond Street", "SA Ginza", "SA Fifth Avenue", "SA Dubai Mall")

METAL_NOTES = ("Only wears {m}.", "Prefers {m} pieces.", "Loves {m}; show her that first.", "Her jewelry is all {m}.")
LIKE_NOTES = ("Drawn to {s}.", "Asked to see the new {one} pieces.", "Has a soft spot for {s}.")
DISLIKE_NOTES = ("No {s}, please.", "Not fond of {s}.", "Avoid {s}: not her style.")
GIFT_NOTES = ("Often buys gifts for her {r}.", "Shops for presents for her {r}.", "Came in for a gift for her {r}.")
OCCASION_NOTES = ("Preparing for {o}.", "Wants something special for {o}.")
CRAFT_NOTES = ("Cares about savoir-faire: asks how each piece is finished.", "Interested in the heritage techniques.")
VALUE_NOTES = ("Watches the price; happy with entry pieces.", "Budget-minded, asks about sale pieces.")
INTENT_NOTES = ("Coming back for {a}{kind} in {material}{whom}.", "Will return to see {a}{kind} in {material}{whom}.",
                "Looking for {a}{kind} in {material}{whom}; call her when it is in.")
OCCASION_WORDS = {"christmas": "Christmas", "valentines_day": "Valentine's Day", "mothers_day": "Mother's Day",
                  "birthday": "a birthday", "anniversary": "their anniversary", "wedding": "a wedding",
                  "graduation": "a graduation"}


def motivations(frame: pd.DataFrame, tastes: Tastes, orders: pd.DataFrame) -> pd.DataFrame:
    """Each client's planted motivations: metal, stone liked and refused, gift, occasion, craft, value."""
    metals = [MATERIALS.index(m) for m in METAL_LABEL]
    metal = np.array(list(METAL_LABEL))[tastes.material[:, metals].argmax(1)]
    stones = [STONES.index(s) for s in STONE_LABEL]
    stone_taste = tastes.stone[:, stones]
    liked = np.array(list(STONE_LABEL))[stone_taste.argmax(1)]
    refused = np.array(list(STONE_LABEL))[stone_taste.argmin(1)]
    craft = tastes.technique[:, [TECHNIQUES.index(t) for t in CRAFT]].max(1) > 1.0
    gifts = orders[orders["is_gift"].astype(bool)]
    gift_of = set(gifts["customer_id"])
    occasions = gifts[gifts["occasion"].fillna("") != ""].groupby("customer_id")["occasion"].agg(
        lambda s: s.value_counts().index[0])
    rows = []
    for u, cid in enumerate(frame["customer_id"]):
        pos = [METAL_LABEL[metal[u]], STONE_LABEL[liked[u]]]
        refuse = stone_taste[u].min() < -0.5 and STONE_LABEL[refused[u]] != STONE_LABEL[liked[u]]
        neg = [STONE_LABEL[refused[u]]] if refuse else []
        if cid in gift_of:
            pos.append("gift")
        if cid in occasions.index:
            pos.append("special occasion")
        if craft[u]:
            pos.append("craftsmanship")
        if TIERS[tastes.tier[u]] == "entry":
            pos.append("value")
        rows.append({"customer_id": cid, "metal": metal[u], "stone_liked": liked[u],
                     "stone_refused": refused[u] if neg else "", "occasion": occasions.get(cid, ""),
                     "positive": ";".join(dict.fromkeys(pos)), "negative": ";".join(neg)})
    return pd.DataFrame(rows)


def client_texts(rng: np.random.Generator, frame: pd.DataFrame, truth: pd.DataFrame, orders: pd.DataFrame,
                 order_items: pd.DataFrame, products: pd.DataFrame, start: int, end: int
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(reviews, client_notes) as contract tables."""
    recipient = np.where(frame["gender"].to_numpy() == "male", "wife", "husband")
    notes = []
    for u, row in enumerate(truth.itertuples()):
        if rng.random() >= NOTE_SHARE:
            continue
        parts = []
        metal = row.metal if rng.random() >= WRONG_METAL else list(METAL_LABEL)[int(rng.integers(len(METAL_LABEL)))]
        parts.append(_pick(rng, METAL_NOTES).format(m=metal))
        if rng.random() < 0.7:
            parts.append(_pick(rng, LIKE_NOTES).format(s=_plural(row.stone_liked), one=row.stone_liked))
        if row.stone_refused and rng.random() < 0.8:
            parts.append(_pick(rng, DISLIKE_NOTES).format(s=_plural(row.stone_refused)))
        if "gift" in row.positive and rng.random() < 0.7:
            parts.append(_pick(rng, GIFT_NOTES).format(r=recipient[u]))
        if row.occasion and rng.random() < 0.6:
            parts.append(_pick(rng, OCCASION_NOTES).format(o=OCCASION_WORDS.get(row.occasion, "an occasion")))
        if "craftsmanship" in row.positive and rng.random() < 0.7:
            parts.append(_pick(rng, CRAFT_NOTES))
        if "value" in row.positive and rng.random() < 0.6:
            parts.append(_pick(rng, VALUE_NOTES))
        order = rng.permutation(len(parts) - 1) + 1
        text = " ".join([parts[0]] + [parts[k] for k in order])
        notes.append({"note_id": f"N{len(notes) + 1:06d}", "customer_id": row.customer_id, "text": text,
                      "author": _pick(rng, AUTHORS),
                      "timestamp": _iso(start + int(rng.random() * (end - start - DAY)))})

    done = orders[orders["order_status"].isin(["completed", "delivered", "shipped"])]
    lines = order_items.merge(done[["order_id", "customer_id", "order_date", "is_gift", "occasion"]], on="order_id")
    facts = products.set_index("product_id")
    liked = truth.set_index("customer_id")
    is_male = dict(zip(frame["customer_id"], frame["gender"].to_numpy() == "male", strict=True))
    reviews = []
    for line in lines.itertuples():
        if rng.random() >= REVIEW_SHARE:
            continue
        when = int(pd.Timestamp(line.order_date).timestamp()) + int((3 + 17 * rng.random()) * DAY)
        if when > end:
            continue
        piece, me = facts.loc[line.product_id], liked.loc[line.customer_id]
        title, parts, rating = str(piece["title"]), [], 5
        metal = str(piece["material"])
        if METAL_LABEL.get(metal) is not None:
            if METAL_LABEL[metal] == METAL_LABEL[me.metal]:
                parts.append(f"The {metal} is exactly what I wear.")
            else:
                parts.append(f"Beautiful, though I usually prefer {me.metal}.")
                rating = 4
        stone = str(piece.get("stone_type", "") or "")
        if stone in STONE_LABEL:
            if STONE_LABEL[stone] == STONE_LABEL.get(me.stone_refused):
                parts.append(f"Not a fan of {_plural(stone)}, to be honest.")
                rating = 3
            else:
                parts.append(f"The {stone} catches the light beautifully.")
        if bool(line.is_gift):
            who = "wife" if is_male[line.customer_id] else rng.choice(["mother", "sister", "husband", "friend"])
            occasion = OCCASION_WORDS.get(str(line.occasion), "").replace("their", "our")
            parts.insert(0, f"Bought it as a gift for my {who}" + (f" for {occasion}." if occasion else "."))
        if "craftsmanship" in me.positive and rng.random() < 0.6:
            parts.append("You can feel how carefully it was finished.")
        if not parts:
            parts.append(_pick(rng, ("Lovely piece.", "Very happy with it.", "Elegant and well made.")))
        reviews.append({"review_id": f"R{len(reviews) + 1:07d}", "customer_id": line.customer_id,
                        "product_id": line.product_id, "title": title, "text": " ".join(parts), "rating": rating,
                        "timestamp": _iso(when)})
    notes += intent_notes(rng, done, order_items, products, recipient, dict(zip(frame["customer_id"], range(len(frame)),
                                                                               strict=True)), start, len(notes))
    return (pd.DataFrame(reviews, columns=["review_id", "customer_id", "product_id", "title", "text", "rating",
                                           "timestamp"]),
            pd.DataFrame(notes, columns=["note_id", "customer_id", "text", "author", "timestamp"]))


def intent_notes(rng: np.random.Generator, done: pd.DataFrame, order_items: pd.DataFrame, products: pd.DataFrame,
                 recipient: np.ndarray, user_of: dict[str, int], start: int, first: int) -> list[dict]:
    """An associate's note of what a client said she is coming back for, written 1-14 days before she buys it
    (INTENT_SHARE of completed orders): the kind of piece and its material, and whom it is for: what clicks may not
    tell until she buys. Drawn after every other text, so the reviews and the taste notes are the same with or
    without these."""
    facts = products.set_index("product_id")
    first_line = order_items.drop_duplicates("order_id").set_index("order_id")["product_id"]
    out = []
    for order in done.itertuples():
        if rng.random() >= INTENT_SHARE:
            continue
        lead = (1 + 13 * rng.random()) * DAY
        when = int(pd.Timestamp(order.order_date).timestamp() - lead)
        template = _pick(rng, INTENT_NOTES)
        if when < start or order.order_id not in first_line.index:
            continue
        piece = facts.loc[first_line[order.order_id]]
        kind = str(piece["subcategory"])
        whom = (f", a gift for her {recipient[user_of[order.customer_id]]}" if bool(order.is_gift) else "")
        if bool(order.is_gift) and str(order.occasion or "") in OCCASION_WORDS:
            whom += f" ({OCCASION_WORDS[str(order.occasion)]})"
        out.append({"note_id": f"N{first + len(out) + 1:06d}", "customer_id": order.customer_id,
                    "text": template.format(a=_article(kind), kind=kind, material=piece["material"], whom=whom),
                    "author": _pick(rng, AUTHORS), "timestamp": _iso(when)})
    return out


def _article(word: str) -> str:
    if word.endswith("s") or word == "knitwear":
        return ""                          # earrings, pumps, loafers, sunglasses
    return "an " if word[0] in "aeiou" else "a "


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


def _plural(stone: str) -> str:
    return {"diamond": "diamonds", "pearl": "pearls", "ruby": "rubies", "sapphire": "sapphires",
            "emerald": "emeralds"}.get(stone, stone)


def _iso(t: int) -> str:
    return pd.Timestamp(t, unit="s", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
