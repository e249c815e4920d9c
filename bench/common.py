"""What the public-data benchmarks share: where ../shared/data is, their argument parser, their workspace."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from vendome.workspace import Workspace

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
SHARED = Path(os.environ.get("VENDOME_SHARED_DATA", HERE.parent.parent / "shared" / "data"))


def parser(doc: str | None, models: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=models, help="comma list of registry names")
    ap.add_argument("--seeds", default="0", help="comma list of seeds")
    return ap


def shared_folder(name: str) -> Path:
    """A dataset folder of ../shared/data, or a clear exit when the benchmark cannot run here."""
    src = SHARED / name
    if not src.exists():
        raise SystemExit(f"{src} not found: this benchmark needs ../shared/data (or VENDOME_SHARED_DATA)")
    return src


def workspace(name: str) -> Workspace:
    return Workspace(OUT / f"ws_{name}")


def seeds(text: str) -> tuple[int, ...]:
    return tuple(int(s) for s in text.split(",") if s)
