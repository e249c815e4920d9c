"""Catalog pairs that differ in one known attribute, and the words a client would use to ask for the change.

The composer learns "keep the piece, change this" from the catalog alone: pieces of the anchor's group (its
subcategory, or subcategory and collection) that differ from it in exactly one of material, stone or colour make an
(anchor, change, targets) example. For a material or stone change the colour may follow (a rose-gold ring reads
rose), so it is free; for a colour change the material and the stone must stay.

    examples = attribute_changes(products, rows=train_rows)             # [Change(anchor, attribute, value, targets)]
    text = phrase(change.attribute, change.value, rng, TRAIN_TEMPLATES)  # "in rose gold", "set with emeralds"
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

CHANGED = ("material", "stone_type", "color")
# attribute changed -> attributes that must stay the same (besides the grouping columns)
KEPT = {"material": ("stone_type",), "stone_type": ("material",), "color": ("material", "stone_type")}
NO_STONE = ("none", "", "nan")

# Phrasings the composer trains on; the benchmark asks with others (EVAL_TEMPLATES) so it measures the language, too.
TRAIN_TEMPLATES = {
    "material": ("in {v}", "{v}", "made in {v}", "same in {v}", "in {v} instead"),
    "stone_type": ("with {vs}", "set with {vs}", "{v}", "with {v} stones", "in {v}"),
    "no_stone": ("without stones", "plain, no stones", "no gemstones"),
    "color": ("in {v}", "{v}", "in {v} instead", "a {v} one", "same in {v}"),
}
EVAL_TEMPLATES = {
    "material": ("like this, but in {v}", "could I see it in {v}?", "the same piece in {v}", "I'd prefer {v}"),
    "stone_type": ("like this, but with {vs}", "the same with {vs}", "could it have {vs}?", "I'd prefer {vs}"),
    "no_stone": ("like this, but without any stones", "the same with no stones"),
    "color": ("like this, but in {v}", "do you have it in {v}?", "the same in {v}", "I'd prefer it in {v}"),
}


@dataclass(frozen=True)
class Change:
    anchor: int                      # item row
    attribute: str                   # material, stone_type or color
    value: str                       # the value asked for
    targets: tuple[int, ...]         # item rows that keep the anchor and carry the value


def attribute_changes(products: pd.DataFrame, rows: Sequence[int] | np.ndarray | None = None,
                      group: Sequence[str] = ("subcategory", "collection"),
                      attributes: Sequence[str] = CHANGED) -> list[Change]:
    """Every (anchor, attribute, new value) among `rows` (default: all) whose targets, also among `rows`, share the
    anchor's `group` columns and kept attributes; one Change per anchor and value, all targets listed."""
    rows = np.arange(len(products)) if rows is None else np.asarray(rows)
    cols = [c for c in (*group, *CHANGED) if c in products]
    frame = products.iloc[rows][cols].astype(str).apply(lambda s: s.str.strip().str.lower())
    frame["row"] = rows
    group = [g for g in group if g in frame]
    out: list[Change] = []
    for attribute in attributes:
        if attribute not in frame:
            continue
        kept = [c for c in KEPT.get(attribute, ()) if c in frame]
        keys = [*group, *kept]
        for _, grp in (frame.groupby(keys, sort=True) if keys else [(None, frame)]):
            values = grp[attribute].to_numpy()
            if len(set(values)) < 2:
                continue
            members = grp["row"].to_numpy()
            for a, va in zip(members, values, strict=True):
                for v in sorted(set(values) - {va}):
                    if v in ("nan", "") and attribute != "stone_type":
                        continue
                    out.append(Change(int(a), attribute, v, tuple(int(t) for t in members[values == v])))
    return out


def phrase(attribute: str, value: str, rng: np.random.Generator, templates: dict = TRAIN_TEMPLATES) -> str:
    """A client's words for "change the attribute to value", drawn from `templates`."""
    stoneless = attribute == "stone_type" and value.lower() in NO_STONE
    options = templates["no_stone" if stoneless else attribute]
    template = options[int(rng.integers(len(options)))]
    return template.format(v=value, vs=plural(value))


def plural(word: str) -> str:
    """Stones as a client says them: diamonds, rubies, pearls."""
    if word.endswith("y") and not word.endswith(("ay", "ey", "oy", "uy")):
        return word[:-1] + "ies"
    if word.endswith(("s", "x", "ch", "sh")):
        return word + "es"
    return word + "s"
