"""The workspace folder: one place for the store, the embedding cache, model artifacts and reports.

    WS/vendome.duckdb      the embedded store (contract tables, written atomically by ingestion)
    WS/features/           embedding cache, keyed by content hash
    WS/models/NAME/        versioned model artifacts
    WS/reports/            evaluation JSON and HTML
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Workspace:
    root: Path

    def __init__(self, root: str | Path = "workspace") -> None:
        object.__setattr__(self, "root", Path(root).expanduser().resolve())

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
        return self.db.exists()

    def ensure(self) -> Workspace:
        for p in (self.root, self.features, self.models, self.reports):
            p.mkdir(parents=True, exist_ok=True)
        return self
