"""Opt-out and erasure ("right to be forgotten"): the privacy officer's two requests, kept in the workspace store.

    consent = Consent(ws)
    consent.opt_out("C001")                       # from now on she gets non-personalised answers
    consent.is_opted_out("C001")                  # True, also for the next process
    report = erase_customer(ws, "C001", models=[model], user_index=data.user_index)

Erasure rebuilds the store into a new file without a single row about her (customers, her orders and their lines,
interactions, the event log, consent, and any other table with a `customer_id`) and swaps it in atomically: on any
error the old store is left as it was. A new file rather than DELETEs because DuckDB keeps a deleted row's bytes in
its file until they are overwritten (on PostgreSQL: DELETEs in one transaction, then VACUUM FULL of the tables they
touched; see `vendome.data.postgres.rebuild`). Her row of `customers` becomes a tombstone (a random id, every other
field empty) in the same place, so every other customer keeps her dense index and fitted models stay aligned with
the store. What is kept is a receipt in `erasures`: a salted hash of the id (the workspace's secret salt), so the
request can be proven without storing who made it. Each given model then forgets her per-customer state
(`Recommender.forget`). The parameters a model learned from everyone (item factors, similarities, popularity) still
hold her share of the aggregate until it is refitted on the erased store, which is why the report says
`refit_required`: a model fitted on the erased store is the same as one fitted on data that never held her.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from vendome.data import store
from vendome.models.base import Recommender
from vendome.workspace import Workspace

CONSENT_TABLE = "consent"
ERASURE_TABLE = store.ERASURES
erasure_receipt = store.erasure_receipt    # kept here too: the privacy officer's module
TOMBSTONE_PREFIX = "erased-"     # the id of an erased customer's placeholder row (random, links to no one)
_CONSENT_DDL = (f"CREATE TABLE IF NOT EXISTS {CONSENT_TABLE} "
                "(customer_id VARCHAR, opted_out BOOLEAN, updated_at TIMESTAMPTZ)")
_ERASURE_DDL = (f"CREATE TABLE IF NOT EXISTS {ERASURE_TABLE} "
                "(subject VARCHAR, erased_at TIMESTAMPTZ, rows_removed BIGINT)")


def _workspace(ws: Workspace | str | Path) -> Workspace:
    return ws if isinstance(ws, Workspace) else Workspace(ws)


def _customer_id(customer_id: object) -> str:
    if not isinstance(customer_id, str) or not customer_id.strip():
        raise ValueError(f"customer_id must be a non-empty id (text), got {customer_id!r}")
    return customer_id


# ------------------------------------------------------------------------------------------------ opt-out
class Consent:
    """Who opted out of personalisation, in the store's `consent` table (one row per customer: her latest choice).

    Reads go to the store each time (a point query, well under a millisecond), so every instance and every process
    sees the latest choice. Ids need not be known yet: an opt-out may arrive before the customer is ingested.
    """

    def __init__(self, ws: Workspace | str | Path) -> None:
        self.ws = _workspace(ws)
        self._writer = store.writer(self.ws)
        self._ready = False

    def is_opted_out(self, customer_id: str) -> bool:
        self._ensure()
        with self._writer.reading() as con:
            row = con.execute(f"SELECT opted_out FROM {CONSENT_TABLE} WHERE customer_id = ?",
                              [str(customer_id)]).fetchone()
        return bool(row[0]) if row else False

    def opt_out(self, customer_id: str) -> None:
        self._set(customer_id, True)

    def opt_in(self, customer_id: str) -> None:
        self._set(customer_id, False)

    def opted_out(self) -> set[str]:
        """Every customer currently opted out (for a service that caches the set)."""
        self._ensure()
        with self._writer.reading() as con:
            return {r[0] for r in con.execute(f"SELECT customer_id FROM {CONSENT_TABLE} WHERE opted_out").fetchall()}

    def _set(self, customer_id: str, opted_out: bool) -> None:
        customer_id = _customer_id(customer_id)
        with self._writer.transaction() as con:
            store.create_table(con, _CONSENT_DDL)
            store.serialize(con, CONSENT_TABLE)  # two processes setting her choice at once leave one row
            con.execute(f"DELETE FROM {CONSENT_TABLE} WHERE customer_id = ?", [customer_id])
            con.execute(f"INSERT INTO {CONSENT_TABLE} VALUES (?, ?, ?)", [customer_id, opted_out, datetime.now(UTC)])
        self._ready = True

    def _ensure(self) -> None:
        if not self._ready:
            with self._writer.transaction() as con:
                store.create_table(con, _CONSENT_DDL)
            self._ready = True


# ------------------------------------------------------------------------------------------------ erasure
@dataclass
class ErasureReport:
    """What an erasure removed. `receipt` is the salted hash stored in `erasures` (never the raw id)."""

    receipt: str
    erased_at: datetime
    rows: dict[str, int] = field(default_factory=dict)       # rows removed per table
    models: list[str] = field(default_factory=list)          # models whose per-customer state was forgotten
    refit_required: bool = False                             # shared parameters still hold her aggregate share

    @property
    def found(self) -> bool:
        """Whether the store held anything about her."""
        return any(self.rows.values())

    def to_dict(self) -> dict:
        return {"receipt": self.receipt, "erased_at": self.erased_at.isoformat(timespec="seconds"),
                "rows": dict(self.rows), "models": list(self.models), "refit_required": self.refit_required,
                "found": self.found}


def erase_customer(ws: Workspace | str | Path, customer_id: str, models: Iterable[Recommender] = (),
                   user_index: Mapping[str, int] | None = None) -> ErasureReport:
    """Remove every row about a customer from the store in one atomic swap, then from each model's per-user state.

    models: fitted models to forget her in (in place); user_index: customer id -> dense user index of the Dataset
    they were fitted on (`data.user_index`), required with models. Erasing an id the store does not hold still
    records a receipt; `report.found` tells the two apart.
    """
    ws = _workspace(ws)
    customer_id = _customer_id(customer_id)
    models = list(models)
    user = _user_to_forget(customer_id, models, user_index)
    receipt = erasure_receipt(ws, customer_id)
    erased_at = datetime.now(UTC)

    in_place = ws.postgres  # PostgreSQL blanks her customers row in place (see record); DuckDB rewrites it

    def keep(table: str, columns: list[str], old: str) -> tuple[str, list] | None:
        if table == "customers" and in_place:
            return None
        if "customer_id" in columns:
            return "CAST(t.customer_id AS VARCHAR) IS DISTINCT FROM ?", [customer_id]
        if table == "order_items":  # her order lines carry only the order id (ingestion keeps orders beside them)
            return (f"NOT EXISTS (SELECT 1 FROM {old}orders AS o WHERE CAST(o.customer_id AS VARCHAR) = ? "
                    "AND o.order_id = t.order_id)"), [customer_id]
        return None

    def record(con, dropped: dict[str, int]) -> None:
        if in_place:
            dropped["customers"] = _blank(con, customer_id)
        elif dropped.get("customers"):
            _tombstone(con, customer_id)
        store.create_table(con, _ERASURE_DDL)
        con.execute(f"INSERT INTO {ERASURE_TABLE} VALUES (?, ?, ?)", [receipt, erased_at, sum(dropped.values())])

    rows = store.rebuild(ws, keep, finish=record)
    forgotten = []
    if user is not None:
        for model in models:
            model.forget(np.array([user], dtype=np.int64))
            forgotten.append(model.name)
    return ErasureReport(receipt, erased_at, rows, forgotten, refit_required=bool(forgotten))


def _tombstone(con, customer_id: str) -> None:
    """Rebuild `customers` from the old store with her row in place but holding nothing of her: a random id and
    NULLs. Written from the old table in one pass, so her values never enter the new file."""
    columns = [r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_catalog = 'old' AND table_schema = 'main' "
        "AND table_name = 'customers' ORDER BY ordinal_position").fetchall()]
    hers = "CAST(customer_id AS VARCHAR) = $id"
    select = [f"CASE WHEN {hers} THEN $tomb ELSE CAST(customer_id AS VARCHAR) END AS customer_id"
              if c == "customer_id" else f'CASE WHEN {hers} THEN NULL ELSE "{c}" END AS "{c}"' for c in columns]
    con.execute("DROP TABLE customers")
    con.execute(f"CREATE TABLE customers AS SELECT {', '.join(select)} FROM old.main.customers",
                {"id": customer_id, "tomb": f"{TOMBSTONE_PREFIX}{uuid.uuid4().hex}"})


def _blank(con, customer_id: str) -> int:
    """PostgreSQL: her `customers` row keeps its place (`_row`) and gets a random id and NULLs everywhere else; the
    old row version is dead, and the VACUUM FULL that follows removes its bytes. Returns the rows blanked."""
    columns = [r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = 'customers' AND column_name NOT IN ('customer_id', '_row')").fetchall()]
    sets = "".join(f', "{c}" = NULL' for c in columns)
    return len(con.execute(f"UPDATE customers SET customer_id = ?{sets} WHERE customer_id = ? RETURNING 1",
                           [f"{TOMBSTONE_PREFIX}{uuid.uuid4().hex}", customer_id]).fetchall())


def _user_to_forget(customer_id: str, models: list[Recommender], user_index: Mapping[str, int] | None) -> int | None:
    """Her dense index in the models' data, checked against every model before anything is erased."""
    if not models:
        return None
    if user_index is None:
        raise ValueError("erase_customer: pass user_index (the user_index of the Dataset the models were fitted on) "
                         "to forget the customer in the models")
    user = user_index.get(customer_id)
    if user is None:
        return None
    for model in models:
        n_users = getattr(model, "n_users_", None)
        if n_users is None:
            raise ValueError(f"erase_customer: model {model.name!r} is not fitted")
        if not 0 <= int(user) < n_users:
            raise ValueError(f"erase_customer: user index {user} of {customer_id!r} is outside model "
                             f"{model.name!r} (fitted on {n_users} users): the user_index is not the models' data's")
    return int(user)
