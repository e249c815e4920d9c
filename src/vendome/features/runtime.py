"""Process settings the encoders share: torch thread count and the Hugging Face offline switch."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run a block with `n` intra-op torch threads, then restore the previous setting."""
    import torch

    if n < 1:
        raise ValueError(f"threads must be >= 1, got {n}")
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def hf_offline() -> None:
    """Forbid Hugging Face Hub network calls; must run before transformers / sentence-transformers are imported,
    because huggingface_hub reads the variable once at import time."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
