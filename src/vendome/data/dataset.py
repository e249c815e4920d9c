"""The Dataset view: what every model, splitter and the evaluator read.

Built from the six validated contract tables (`Dataset.from_tables`). Items and users are dense integer indices
(row i of `products` is item i, row u of `customers` is user u) so models work on arrays; the string ids stay in
the frames for serving and reports. Interactions are one long frame of (user, item, behavior, timestamp, weight),
where completed order lines have already become `purchase` events.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

BEHAVIORS = ("view", "click", "add_to_cart", "remove_from_cart", "add_to_wishlist", "purchase")

# Signal strength per behavior (DESIGN §2): purchase > wishlist > cart > long view > click; a removal from the
# cart is negative evidence. A view longer than LONG_VIEW_SECONDS counts as a long view.
BEHAVIOR_WEIGHTS: dict[str, float] = {
    "purchase": 10.0,
    "add_to_wishlist": 4.0,
    "add_to_cart": 3.0,
    "view": 1.0,
    "click": 0.5,
    "remove_from_cart": -2.0,
}
LONG_VIEW_SECONDS = 30.0
LONG_VIEW_WEIGHT = 2.0
# Order statuses whose lines do not count as purchases.
NON_PURCHASE_STATUSES = frozenset({"cancelled", "canceled", "returned", "refunded", "failed"})

INTERACTION_COLUMNS = ["user", "item", "behavior", "timestamp", "weight"]
TEXT_COLUMNS = ["user", "item", "kind", "text", "timestamp"]


def no_texts() -> pd.DataFrame:
    return pd.DataFrame({"user": pd.Series(dtype=np.int32), "item": pd.Series(dtype=np.int32),
                         "kind": pd.Series(dtype=object), "text": pd.Series(dtype=object),
                         "timestamp": pd.Series(dtype=np.int64)})


@dataclass
class Dataset:
    """Catalog, customers and interactions, indexed densely.

    products:      one row per item; column `product_id` plus the catalog attributes.
    customers:     one row per user; column `customer_id` plus demographics.
    interactions:  columns user (int32), item (int32), behavior (str), timestamp (int64 unix seconds),
                   weight (float32, signed signal strength), and optional extras (session_id, split, ...).
    item_features: modality name -> (n_items, d) float32 matrix (e.g. "image", "text"), rows aligned with products,
                   plus boolean (n_items,) masks "<modality>_missing" for items without that content.
    target_behaviors: behaviors that count as the outcome we recommend for (purchase by default).
    texts:         what clients wrote and what was noted about them: columns user (int32), item (int32, -1 for a
                   client note), kind ("review" or "note"), text, timestamp (unix seconds). Splits keep only the
                   texts written before what they hold out, so motivations never leak the test.
    """

    products: pd.DataFrame
    customers: pd.DataFrame
    interactions: pd.DataFrame
    name: str = "dataset"
    item_features: dict[str, np.ndarray] = field(default_factory=dict)
    target_behaviors: tuple[str, ...] = ("purchase",)
    texts: pd.DataFrame = field(default_factory=no_texts)

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_tables(cls, tables: dict[str, pd.DataFrame], name: str = "dataset",
                    target_behaviors: tuple[str, ...] = ("purchase",)) -> Dataset:
        """Build the view from contract tables (already validated by `vendome.data.ingest`)."""
        products = tables["products"].reset_index(drop=True).copy()
        products["product_id"] = products["product_id"].astype(str)
        customers = tables.get("customers")
        events = _events_from_tables(tables)
        if customers is None or customers.empty:
            customers = pd.DataFrame({"customer_id": pd.unique(events["customer_id"])})
        customers = customers.reset_index(drop=True).copy()
        customers["customer_id"] = customers["customer_id"].astype(str)

        item_of = pd.Series(np.arange(len(products), dtype=np.int32), index=products["product_id"])
        user_of = pd.Series(np.arange(len(customers), dtype=np.int32), index=customers["customer_id"])
        inter = pd.DataFrame({
            "user": user_of.reindex(events["customer_id"]).to_numpy(),
            "item": item_of.reindex(events["product_id"]).to_numpy(),
            "behavior": events["interaction_type"].astype(str).to_numpy(),
            "timestamp": events["timestamp"].to_numpy(dtype=np.int64),
        })
        for extra in ("session_id", "interaction_duration", "split"):
            if extra in events:
                inter[extra] = events[extra].to_numpy()
        unknown = inter["user"].isna() | inter["item"].isna()
        if unknown.any():  # ingestion rejects these; a hand-built table may still carry them
            raise ValueError(f"{int(unknown.sum())} interactions name unknown customers or products")
        inter["user"] = inter["user"].astype(np.int32)
        inter["item"] = inter["item"].astype(np.int32)
        inter["weight"] = behavior_weights(inter)
        inter = inter.sort_values(["timestamp", "user"], kind="stable").reset_index(drop=True)
        return cls(products, customers, inter, name=name, target_behaviors=tuple(target_behaviors),
                   texts=_texts_from_tables(tables, user_of, item_of))

    def with_interactions(self, interactions: pd.DataFrame) -> Dataset:
        """Same catalog, customers and features; other interactions (used by splits)."""
        return replace(self, interactions=interactions.reset_index(drop=True))

    def with_texts(self, texts: pd.DataFrame) -> Dataset:
        return replace(self, texts=texts.reset_index(drop=True))

    def add_events(self, events: pd.DataFrame) -> Dataset:
        """Same catalog and customers, with contract-shaped `interactions` rows (the live event log) appended and
        the interactions kept in time order. Every id must be known: new customers and products come in through
        ingestion, which assigns their dense indices."""
        if events is None or events.empty:
            return self
        users = pd.Series(self.user_index).reindex(events["customer_id"].astype(str)).to_numpy()
        items = pd.Series(self.item_index).reindex(events["product_id"].astype(str)).to_numpy()
        unknown = pd.isna(users) | pd.isna(items)
        if unknown.any():
            raise ValueError(f"{int(unknown.sum())} events name customers or products this dataset does not hold")
        rows = pd.DataFrame({"user": users.astype(np.int32), "item": items.astype(np.int32),
                             "behavior": events["interaction_type"].astype(str).to_numpy(),
                             "timestamp": to_unix_seconds(events["timestamp"]).to_numpy(np.int64)})
        for extra in ("session_id", "interaction_duration"):
            if extra in events and extra in self.interactions:
                rows[extra] = events[extra].to_numpy()
        rows["weight"] = behavior_weights(rows)
        rows = rows[[c for c in self.interactions.columns if c in rows]].sort_values(["timestamp", "user"],
                                                                                     kind="stable")
        old = self.interactions
        inter = pd.concat([old, rows], ignore_index=True)
        if len(old) and rows["timestamp"].iloc[0] <= old["timestamp"].iloc[-1]:
            inter = inter.sort_values(["timestamp", "user"], kind="stable")
        # else live events after everything already held: appending keeps the order, without a sort of the whole
        # history (half of an event's cost in a service holding 350,000 interactions)
        return self.with_interactions(inter)

    # ----------------------------------------------------------------- sizes and ids
    @property
    def n_users(self) -> int:
        return len(self.customers)

    @property
    def n_items(self) -> int:
        return len(self.products)

    @cached_property
    def item_index(self) -> dict[str, int]:
        return {pid: i for i, pid in enumerate(self.products["product_id"])}

    @cached_property
    def user_index(self) -> dict[str, int]:
        return {cid: u for u, cid in enumerate(self.customers["customer_id"])}

    # ----------------------------------------------------------------- matrices
    def matrix(self, behaviors: tuple[str, ...] | None = None, binary: bool = False) -> sp.csr_matrix:
        """User x item matrix of summed behavior weights (negatives clipped at 0), float32."""
        df = self.interactions
        if behaviors is not None:
            df = df[df["behavior"].isin(behaviors)]
        vals = np.ones(len(df), np.float32) if binary else df["weight"].to_numpy(np.float32)
        m = sp.csr_matrix((vals, (df["user"].to_numpy(), df["item"].to_numpy())),
                          shape=(self.n_users, self.n_items), dtype=np.float32)
        m.sum_duplicates()
        if binary:
            m.data[:] = 1.0
        else:
            m.data = np.maximum(m.data, 0.0)
        m.eliminate_zeros()
        return m

    def target_matrix(self) -> sp.csr_matrix:
        """Binary user x item matrix of the target behaviors."""
        return self.matrix(self.target_behaviors, binary=True)

    def sequences(self, behaviors: tuple[str, ...] | None = None) -> list[np.ndarray]:
        """Per user, the items interacted with in time order (for sequence models)."""
        df = self.interactions
        if behaviors is not None:
            df = df[df["behavior"].isin(behaviors)]
        df = df.sort_values(["user", "timestamp"], kind="stable")
        bounds = np.searchsorted(df["user"].to_numpy(), np.arange(self.n_users + 1))
        items = df["item"].to_numpy()
        return [items[bounds[u]:bounds[u + 1]] for u in range(self.n_users)]

    def active_users(self) -> np.ndarray:
        return np.unique(self.interactions["user"].to_numpy())

    def features(self, modality: str) -> np.ndarray:
        """Item feature matrix for a modality, with an error that says how to get it."""
        if modality not in self.item_features:
            have = ", ".join(self.item_features) or "none"
            raise ValueError(f"dataset {self.name!r} has no {modality!r} item features (has: {have}); "
                             "run `vendome features` or load the workspace with features enabled")
        return self.item_features[modality]

    def describe(self) -> dict:
        inter = self.interactions
        return {
            "name": self.name,
            "n_users": self.n_users,
            "n_items": self.n_items,
            "n_interactions": int(len(inter)),
            "n_active_users": int(inter["user"].nunique()) if len(inter) else 0,
            "behaviors": {str(k): int(v) for k, v in inter["behavior"].value_counts().items()},
            "first": int(inter["timestamp"].min()) if len(inter) else None,
            "last": int(inter["timestamp"].max()) if len(inter) else None,
            "target_behaviors": list(self.target_behaviors),
        }


def behavior_weights(inter: pd.DataFrame) -> np.ndarray:
    """Signed signal strength of each interaction (DESIGN §2)."""
    w = inter["behavior"].map(BEHAVIOR_WEIGHTS).fillna(1.0).to_numpy(np.float32)
    if "interaction_duration" in inter:
        dur = pd.to_numeric(inter["interaction_duration"], errors="coerce").to_numpy()
        long_view = (inter["behavior"].to_numpy() == "view") & (np.nan_to_num(dur) > LONG_VIEW_SECONDS)
        w[long_view] = LONG_VIEW_WEIGHT
    return w


def to_unix_seconds(values: pd.Series) -> pd.Series:
    """Timestamps (datetime, ISO strings or numbers of seconds) as int64 unix seconds."""
    if pd.api.types.is_numeric_dtype(values):
        return values.astype(np.int64)
    ts = pd.to_datetime(values, utc=True, format="mixed")
    return pd.Series(ts.astype("datetime64[s, UTC]").astype(np.int64).to_numpy(), index=values.index)


def _texts_from_tables(tables: dict[str, pd.DataFrame], user_of: pd.Series, item_of: pd.Series) -> pd.DataFrame:
    """Reviews and client notes on the dense indices, in time order."""
    parts = []
    for name, kind in (("reviews", "review"), ("client_notes", "note")):
        df = tables.get(name)
        if df is None or df.empty:
            continue
        users = user_of.reindex(df["customer_id"].astype(str)).to_numpy()
        items = item_of.reindex(df["product_id"].astype(str)).to_numpy() if "product_id" in df else \
            np.full(len(df), -1.0)
        unknown = pd.isna(users) | pd.isna(items)
        if unknown.any():  # ingestion rejects these; a hand-built table may still carry them
            raise ValueError(f"{int(unknown.sum())} {name} rows name unknown customers or products")
        text = df["text"].astype(str)
        if "title" in df:
            title = df["title"].fillna("").astype(str).str.strip()
            text = np.where(title != "", title + ". " + text, text)
        parts.append(pd.DataFrame({"user": users.astype(np.int32), "item": items.astype(np.int32), "kind": kind,
                                   "text": np.asarray(text, dtype=object),
                                   "timestamp": to_unix_seconds(df["timestamp"]).to_numpy(np.int64)}))
    if not parts:
        return no_texts()
    return pd.concat(parts, ignore_index=True).sort_values(["timestamp", "user"], kind="stable").reset_index(drop=True)


def _events_from_tables(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Interactions plus completed order lines as purchases, one frame in contract column names.

    An interaction row of type purchase that matches an order line (same customer and product) is dropped, so a
    purchase logged in both systems counts once and a cancelled order's click-stream purchase does not count.
    """
    inter = tables.get("interactions")
    cols = ["customer_id", "product_id", "interaction_type", "timestamp"]
    inter = pd.DataFrame(columns=cols) if inter is None else inter.copy()
    if len(inter):
        inter["timestamp"] = to_unix_seconds(inter["timestamp"])
    orders, lines = tables.get("orders"), tables.get("order_items")
    if orders is None or lines is None or orders.empty or lines.empty:
        out = inter
    else:
        o = orders[["order_id", "customer_id", "order_date", "order_status"]].copy()
        o["order_id"] = o["order_id"].astype(str)
        li = lines[["order_id", "product_id"]].copy()
        li["order_id"] = li["order_id"].astype(str)
        li = li.merge(o, on="order_id", how="inner")
        li["customer_id"] = li["customer_id"].astype(str)
        li["product_id"] = li["product_id"].astype(str)
        if len(inter):
            inter["customer_id"] = inter["customer_id"].astype(str)
            inter["product_id"] = inter["product_id"].astype(str)
            is_buy = inter["interaction_type"] == "purchase"
            keys = pd.MultiIndex.from_frame(li[["customer_id", "product_id"]])
            matched = pd.MultiIndex.from_frame(inter[["customer_id", "product_id"]]).isin(keys)
            inter = inter[~(is_buy.to_numpy() & matched)]
        done = ~li["order_status"].astype(str).str.lower().isin(NON_PURCHASE_STATUSES)
        buys = pd.DataFrame({
            "customer_id": li.loc[done, "customer_id"],
            "product_id": li.loc[done, "product_id"],
            "interaction_type": "purchase",
            "timestamp": to_unix_seconds(li.loc[done, "order_date"]),
        })
        out = pd.concat([inter, buys], ignore_index=True)
    out["customer_id"] = out["customer_id"].astype(str)
    out["product_id"] = out["product_id"].astype(str)
    return out.reset_index(drop=True)
