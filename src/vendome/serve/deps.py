"""What the routers share: the service object and the admin key check."""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request

from vendome.serve.service import Recommendations
from vendome.workspace import Workspace

KEY_FILE = "admin_api_key"


async def service(request: Request) -> Recommendations:
    """`async`: a plain function dependency would cost every request a trip through the thread pool."""
    return request.app.state.service


Service = Annotated[Recommendations, Depends(service)]


def admin_key(ws: Workspace, given: str | None = None) -> str:
    """The admin API key: the one given, else VENDOME_API_KEY, else the workspace's own (created on first use,
    readable by the owner only), so admin endpoints are never open by default."""
    key = given or os.environ.get("VENDOME_API_KEY")
    if key:
        return key
    path: Path = ws.root / KEY_FILE
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def require_admin(request: Request, x_api_key: str | None = Header(None, description="the admin API key")) -> None:
    """Admin endpoints (erasure, rules, model activation, experiments) need the X-API-Key header."""
    expected = request.app.state.admin_key
    if not x_api_key or not hmac.compare_digest(x_api_key.encode(), expected.encode()):
        raise HTTPException(401, detail="admin endpoint: send the admin key in the X-API-Key header")
