"""The training loop every neural model shares: budgets, early stopping, checkpoints and resume, seeds, threads.

Three pieces stay apart so a data-parallel launcher can swap any of them: the model (an nn.Module whose
`loss(batch)` returns a scalar), the batches (anything with `epoch(n)` yielding batches and `len()`), and the
optimizer step (`Trainer.step`). Validation is a callable returning the early-stopping metric (higher is better),
so each model validates through its own serving path.

Under torchrun (distributed.py) the same Trainer trains one rank: DDP wraps the loss, each rank reads its shard of
every global batch, rank 0 alone validates, checkpoints and decides when to stop, and tells the others.

    trainer = Trainer(module, TrainConfig(epochs=200, patience=10, max_minutes=30))
    history = trainer.fit(batches, validate=lambda: ndcg_at_10())
    # module now holds the best validated weights

Checkpoints (`checkpoint_dir`) hold the model, the optimizer, the epoch, the best weights so far and the
history, written atomically after every epoch; `fit` resumes from one when it exists, so an interrupted run
continues where it stopped and, with the same seed, ends where an uninterrupted run would have.
"""

from __future__ import annotations

import copy
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from vendome.training.distributed import DataParallel


class Batches(Protocol):
    def __len__(self) -> int: ...
    def epoch(self, epoch: int): ...


@dataclass
class TrainConfig:
    """How long and how to train; stopped by whichever budget ends first.

    epochs:          upper bound on passes over the data.
    max_minutes:     wall-clock budget for the whole fit (None: no limit); checked after every batch.
    patience:        stop after this many validations without improvement of the validation metric.
    eval_every:      validate every this many epochs (the last epoch is always validated).
    lr, weight_decay, clip_norm: AdamW settings and gradient clipping (None: no clipping).
    seed:            seeds python, numpy and torch; batches are a function of (seed, epoch).
    threads:         torch intra-op threads (1 in tests; the number of cores in production).
    checkpoint_dir:  where to write `last.pt` after each epoch and resume from (None: no checkpoints).
    progress:        tqdm bar per epoch, and one line per validation.
    """

    epochs: int = 200
    max_minutes: float | None = None
    patience: int = 10
    eval_every: int = 1
    lr: float = 1e-3
    weight_decay: float = 0.0
    clip_norm: float | None = 5.0
    seed: int = 0
    threads: int = 1
    checkpoint_dir: str | None = None
    progress: bool = False


@dataclass
class History:
    """What happened during fit: per-validation metric, loss per epoch, the best epoch and why it stopped."""

    losses: list[float] = field(default_factory=list)
    metrics: list[tuple[int, float]] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    best_epoch: int = -1
    best_metric: float = -np.inf
    stopped: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class Trainer:
    """Fits an nn.Module that exposes `loss(batch) -> scalar tensor`."""

    def __init__(self, module: torch.nn.Module, config: TrainConfig) -> None:
        self.module = module
        self.config = config
        self.optimizer = torch.optim.AdamW(module.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.parallel = DataParallel.current()           # None: one process
        self._ddp: torch.nn.Module | None = None          # the DDP wrapper, while fit runs

    @property
    def is_main(self) -> bool:
        """The process that validates, checkpoints and decides (the only one, outside torchrun)."""
        return self.parallel is None or self.parallel.is_main

    def step(self, batch) -> float:
        """One optimizer step on one batch (in data-parallel training, this rank's shard of it); returns the loss
        (this rank's share of the global batch's mean loss, times the number of ranks)."""
        self.optimizer.zero_grad(set_to_none=True)
        if self._ddp is None:
            loss = self.module.loss(batch)
        else:
            with self.parallel.sharded():
                loss = self._ddp(batch)
        loss.backward()
        if self.config.clip_norm:
            torch.nn.utils.clip_grad_norm_(self.module.parameters(), self.config.clip_norm)
        self.optimizer.step()
        return float(loss.detach())

    def fit(self, batches: Batches, validate: Callable[[], float] | None = None) -> History:
        cfg = self.config
        torch.set_num_threads(max(1, int(cfg.threads)))
        seed_everything(cfg.seed)
        history, best_state, start_epoch = History(), None, 0
        resumed = self._resume()
        if resumed is not None:
            history, best_state, start_epoch = resumed
        parallel = self.parallel
        if parallel is not None:
            self._ddp = parallel.wrap(self.module)       # after resuming: DDP starts from rank 0's weights
            batches = parallel.shard(batches)
            validate = validate if parallel.is_main else None
        t0 = time.perf_counter()
        deadline = t0 + cfg.max_minutes * 60 if cfg.max_minutes else None
        stale = _stale_count(history)
        for epoch in range(start_epoch, cfg.epochs):
            self.module.train()
            if parallel is not None:
                parallel.seed(cfg.seed, epoch)
            e0, total, n = time.perf_counter(), 0.0, 0
            out_of_time = False
            bar = _bar(batches, epoch, cfg, self.is_main)
            for batch in bar:
                total += self.step(batch)
                n += 1
                if cfg.progress and n % 20 == 0:
                    bar.set_postfix(loss=f"{total / n:.4f}")
                if deadline:
                    out_of_time = time.perf_counter() > deadline
                    if parallel is not None:
                        out_of_time = parallel.any(out_of_time)     # every rank stops at the same step
                    if out_of_time:
                        break
            if parallel is not None:
                total = parallel.mean(total)                      # the global batches' mean losses
            history.losses.append(total / max(n, 1))
            history.epoch_seconds.append(time.perf_counter() - e0)
            last = epoch == cfg.epochs - 1 or out_of_time
            if validate is not None and ((epoch + 1) % cfg.eval_every == 0 or last):
                self.module.eval()
                with torch.no_grad():
                    metric = float(validate())
                history.metrics.append((epoch, metric))
                if metric > history.best_metric:
                    history.best_metric, history.best_epoch, stale = metric, epoch, 0
                    best_state = copy.deepcopy(self.module.state_dict())
                else:
                    stale += 1
                if cfg.progress:
                    print(f"  epoch {epoch + 1}: loss {history.losses[-1]:.4f}, validation {metric:.4f} "
                          f"(best {history.best_metric:.4f} at epoch {history.best_epoch + 1}), "
                          f"{history.epoch_seconds[-1]:.1f} s", flush=True)
            self._checkpoint(epoch, history, best_state)
            stop = ""
            if out_of_time:
                stop = f"time budget of {cfg.max_minutes:g} min"
            elif validate is not None and stale >= cfg.patience:
                stop = f"no improvement for {cfg.patience} validations"
            if parallel is not None:
                stop = parallel.from_main(stop)                   # rank 0 validated; nobody waits for a lost step
            if stop:
                history.stopped = stop
                break
        else:
            history.stopped = history.stopped or f"{cfg.epochs} epochs"
        if best_state is not None:
            self.module.load_state_dict(best_state)
        if parallel is not None:
            parallel.sync_from_main(self.module)
            self._ddp = None                             # no DDP reducer outlives the process group
        self.module.eval()
        return history

    # ------------------------------------------------------------------------------------ checkpoints
    def _path(self) -> Path | None:
        return Path(self.config.checkpoint_dir) / "last.pt" if self.config.checkpoint_dir else None

    def _checkpoint(self, epoch: int, history: History, best_state: dict | None) -> None:
        path = self._path()
        if path is None or not self.is_main:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save({"epoch": epoch, "model": self.module.state_dict(), "optimizer": self.optimizer.state_dict(),
                    "best": best_state, "history": history.to_dict(), "config": asdict(self.config),
                    "torch_rng": torch.get_rng_state()}, tmp)
        os.replace(tmp, path)  # a crash mid-write never leaves a broken checkpoint

    def _resume(self) -> tuple[History, dict | None, int] | None:
        path = self._path()
        if path is None or not path.exists():
            return None
        state = torch.load(path, map_location="cpu", weights_only=False)
        self.module.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        h = state["history"]
        history = History(losses=h["losses"], metrics=[tuple(m) for m in h["metrics"]],
                          epoch_seconds=h["epoch_seconds"], best_epoch=h["best_epoch"], best_metric=h["best_metric"])
        if self.config.progress and self.is_main:
            print(f"  resuming from {path} after epoch {state['epoch'] + 1}", flush=True)
        return history, state["best"], state["epoch"] + 1


def _stale_count(history: History) -> int:
    """Validations since the best one (for a resumed run)."""
    return sum(1 for epoch, _ in history.metrics if epoch > history.best_epoch)


def _bar(batches: Batches, epoch: int, cfg: TrainConfig, main: bool = True):
    it = batches.epoch(epoch)
    if not (cfg.progress and main):
        return _Quiet(it)
    from tqdm.auto import tqdm

    return tqdm(it, total=len(batches), desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False, mininterval=2.0)


class _Quiet:
    def __init__(self, it) -> None:
        self.it = it

    def __iter__(self):
        return iter(self.it)

    def set_postfix(self, **_: Any) -> None:
        pass
