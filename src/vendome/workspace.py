"""The workspace folder: one place for the store, the embedding cache, model artifacts and reports.

    WS/vendome.duckdb      the embedded store (contract tables, written atomically by ingestion)
    WS/features/           embedding cache, keyed by content hash
    WS/models/NAME/        versioned model artifacts
    WS/reports/            evaluation JSON and HTML

With a database URL (`database_url=` or the `VENDOME_DATABASE_URL` environment variable), the store lives in
PostgreSQL instead of `vendome.duckdb`, in one schema per workspace, so one database holds several workspaces:

    postgresql://postgres@127.0.0.1:5432/vendome?schema=paris      schema "paris" (the explicit way)
    postgresql://...?options=-csearch_path%3Dparis                  schema "paris" (libpq's own spelling)
    postgresql://postgres@127.0.0.1:5432/vendome                    schema named after the folder ("workspace")

`schema=` on the Workspace wins over the URL. The folder still holds the features, models and reports.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

DATABASE_URL_ENV = "VENDOME_DATABASE_URL"
_SEARCH_PATH = re.compile(r"search_path\s*=\s*([A-Za-z_][A-Za-z0-9_]*)")
_UNSAFE = re.compile(r"[^a-z0-9_]+")


@dataclass(frozen=True)
class Workspace:
    root: Path
    database_url: str | None = None
    schema: str | None = None

    def __init__(self, root: str | Path = "workspace", database_url: str | None = None,
                 schema: str | None = None) -> None:
        url = (database_url if database_url is not None else os.environ.get(DATABASE_URL_ENV)) or None
        object.__setattr__(self, "root", Path(root).expanduser().resolve())
        object.__setattr__(self, "database_url", url)
        if url is not None:
            if not url.startswith(("postgresql://", "postgres://")):
                raise ValueError(f"database URL must start with postgresql://, got {url!r}")
            schema = schema or _schema_in(url) or _schema_for(self.root.name)
            if not re.fullmatch(r"[a-z_][a-z0-9_]{0,39}", schema):
                raise ValueError(f"schema must be a lower-case identifier of at most 40 characters, got {schema!r}")
        object.__setattr__(self, "schema", schema if url is not None else None)

    @property
    def postgres(self) -> bool:
        """Whether the store is in PostgreSQL rather than the DuckDB file."""
        return self.database_url is not None

    @property
    def conninfo(self) -> str:
        """The URL as libpq takes it (without Vendome's own `schema` parameter)."""
        if self.database_url is None:
            raise ValueError("this workspace has no database URL (its store is the DuckDB file)")
        parts = urlsplit(self.database_url)
        query = [(k, v) for k, v in parse_qsl(parts.query) if k != "schema"]
        return urlunsplit(parts._replace(query=urlencode(query)))

    @property
    def db(self) -> Path:
        return self.root / "vendome.duckdb"

    @property
    def features(self) -> Path:
        return self.root / "features"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    def exists(self) -> bool:
        """Whether the store holds an ingested dataset."""
        if self.postgres:
            from vendome.data import store  # the data layer knows how to ask the database
            return store.has_table(self, "products")
        return self.db.exists()

    def ensure(self) -> Workspace:
        for p in (self.root, self.features, self.models, self.reports):
            p.mkdir(parents=True, exist_ok=True)
        return self


def _schema_in(url: str) -> str | None:
    query = dict(parse_qsl(urlsplit(url).query))
    if "schema" in query:
        return query["schema"]
    found = _SEARCH_PATH.search(unquote(query.get("options", "")))
    return found.group(1) if found else None


def _schema_for(folder: str) -> str:
    name = _UNSAFE.sub("_", folder.lower()).strip("_")[:40] or "workspace"
    return name if not name[0].isdigit() else f"ws_{name}"[:40]
