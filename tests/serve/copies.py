"""A private copy of the session's boutique workspace, for a module that writes to it."""

from __future__ import annotations

import shutil
from pathlib import Path

from vendome.workspace import Workspace


def copy_boutique(src: Path, dst: Path) -> Workspace:
    shutil.copytree(src, dst)
    return Workspace(dst)
