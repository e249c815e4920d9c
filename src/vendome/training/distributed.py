"""Data-parallel training of the neural models: torchrun starts one process per core (or GPU), DistributedDataParallel
averages their gradients, and N processes take the optimizer steps one process takes with the same global batch.

    vendome train sasrec --workspace WS --nproc 2
    # runs: python -m torch.distributed.run --standalone --nproc_per_node 2 -m vendome.training.distributed \
    #           --data DATASET.pkl --model sasrec --workspace WS ...

Why the steps are the same. Batches are a function of (seed, epoch), so every rank draws the same global batch and
keeps its rows rank, rank + N, ... (`ShardedBatches`; a last batch of fewer than N rows leaves some ranks an empty
shard, which trains nothing but still joins the gradient exchange). Losses are means over the global batch, not
over each shard: `mean_over_ranks` divides a rank's sum by the global count and multiplies by N, which DDP's
averaging divides back, so the averaged gradient is exactly the one-process gradient of that batch, and clipping
and AdamW then do the same thing on every rank. In-batch negatives (CAMMSR's swap InfoNCE) are gathered from every
rank (`gather_rows`), so each row still meets the whole global batch.

Who does what. Every rank trains. Rank 0 alone validates, decides early stopping and broadcasts the decision (so no
rank waits for a step that never comes), writes the checkpoints and the model artifact; the time budget stops every
rank at the same step. A checkpoint is the same file in one process or in N: a run resumes with any N.

What is not bit for bit. Random draws inside the forward pass (dropout, CAMMSR's ID dropout and swap picks) come
from each rank's own generator, seeded by (seed, epoch, rank): with them on, N processes train the same model in
distribution, not in value. Floating-point sums also group differently: weights agree to about 1e-7, except a
weight whose gradient is zero in theory (an attention key bias), where Adam magnifies rounding noise either way.

Which models: MODELS. The plug-ins (mclmr:*, lmmrec:*) add loss terms of their own, means over each shard, so they
train in one process. On a GPU machine the group routes CUDA tensors through NCCL, but the models do not place
their tensors on a GPU yet: they train on the CPU, through gloo.
"""

from __future__ import annotations

import argparse
import contextvars
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

# the estimators whose training runs through Trainer with losses reduced by `mean_over_ranks`
MODELS = ("sasrec", "cammsr", "mbmf", "mblightgcn")
TIMEOUT = timedelta(hours=2)        # rank 0 may validate a large catalog while the others wait

_SHARD: contextvars.ContextVar[DataParallel | None] = contextvars.ContextVar("vendome_shard", default=None)


# ---------------------------------------------------------------------------------------------- the rank
@dataclass(frozen=True)
class DataParallel:
    """This process's place in the process group, and the few collective decisions the Trainer needs."""

    rank: int
    world_size: int

    @classmethod
    def current(cls) -> DataParallel | None:
        """The group this process trains in, or None outside torchrun (and for a group of one: nothing to share)."""
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
            return None
        return cls(dist.get_rank(), dist.get_world_size())

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wrap(self, module: nn.Module) -> nn.Module:
        """DDP around the module's loss. Buffers (frozen features, graphs) are the same on every rank by
        construction and never change, so they are not re-broadcast at every step."""
        from torch.nn.parallel import DistributedDataParallel

        on_gpu = next(module.parameters()).is_cuda
        return DistributedDataParallel(_LossOf(module), forward_sync_buffers=False,
                                       device_ids=[torch.cuda.current_device()] if on_gpu else None)

    def shard(self, batches: Any) -> ShardedBatches:
        return ShardedBatches(batches, self.rank, self.world_size)

    def seed(self, seed: int, epoch: int) -> None:
        """Each rank its own draws for dropout and the like, a function of (seed, epoch, rank) so a resumed run
        draws what an uninterrupted one would."""
        torch.manual_seed(int(np.random.SeedSequence([seed, epoch, self.rank]).generate_state(1)[0]))

    def any(self, flag: bool) -> bool:
        """True on every rank when it is true on one (the time budget: all stop at the same step)."""
        t = torch.tensor([float(flag)])
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def mean(self, value: float) -> float:
        t = torch.tensor([value], dtype=torch.float64)
        dist.all_reduce(t)
        return float(t.item()) / self.world_size

    def from_main(self, value: Any) -> Any:
        """Rank 0's value on every rank (the early-stopping decision)."""
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def sync_from_main(self, module: nn.Module) -> None:
        """Rank 0's weights (the best validated ones) on every rank, so every rank ends with the same model."""
        with torch.no_grad():
            for p in module.parameters():          # buffers are constants, the same everywhere
                dist.broadcast(p.data, src=0)

    @contextmanager
    def sharded(self) -> Iterator[None]:
        """While a rank computes its loss on its shard: losses reduce over the global batch."""
        token = _SHARD.set(self)
        try:
            yield
        finally:
            _SHARD.reset(token)


class _LossOf(nn.Module):
    """DDP synchronises the gradients of what its forward returns: here, the model's `loss(batch)`."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, batch: Any) -> torch.Tensor:
        return self.module.loss(batch)


# ---------------------------------------------------------------------------------------------- batches
class ShardedBatches:
    """This rank's rows (rank, rank + N, ...) of every global batch of `batches` (the Batches protocol). Strided
    rather than contiguous: batches sorted by length then give every rank the same amount of work."""

    def __init__(self, batches: Any, rank: int, world_size: int) -> None:
        self.batches, self.rank, self.world_size = batches, rank, world_size

    def __len__(self) -> int:
        return len(self.batches)

    def epoch(self, epoch: int) -> Iterator[Any]:
        for batch in self.batches.epoch(epoch):
            yield shard(batch, self.rank, self.world_size)


def shard(batch: Any, rank: int, world_size: int) -> Any:
    """Rows rank::world_size of a batch: a tensor with rows first, or a (nested) tuple or list of them."""
    if isinstance(batch, torch.Tensor):
        return batch[rank::world_size]
    if isinstance(batch, tuple | list):
        return type(batch)(shard(b, rank, world_size) for b in batch)
    raise TypeError(f"cannot shard a batch of type {type(batch).__name__}: batches are tensors with rows first, "
                    "or tuples / lists of them")


# ---------------------------------------------------------------------------------------------- losses
def mean_over_ranks(total: torch.Tensor, count: torch.Tensor | float) -> torch.Tensor:
    """total / count, where in data-parallel training both are sums over the global batch: a rank's shard gives
    its own total, the counts are summed over ranks, and the N that DDP's gradient averaging divides by is put
    back. A mean per shard would weigh a short last shard like a full one. One process: total / count."""
    count = torch.as_tensor(count, dtype=total.dtype, device=total.device)
    group = _SHARD.get()
    if group is None:
        return total / count.clamp_min(1e-8)
    count = count.detach().clone()
    dist.all_reduce(count)
    return total * group.world_size / count.clamp_min(1e-8)


def gather_rows(*tensors: torch.Tensor) -> tuple[list[torch.Tensor], int]:
    """(each tensor's rows from every rank, in rank order; where this rank's rows start): the global batch, for
    in-batch negatives. Gradients flow back to the rank that owns each row. One process: (tensors, 0)."""
    group = _SHARD.get()
    if group is None:
        return list(tensors), 0
    sizes = [torch.zeros(1, dtype=torch.int64) for _ in range(group.world_size)]
    dist.all_gather(sizes, torch.tensor([len(tensors[0])]))
    counts = [int(s) for s in sizes]
    return [_GatherRows.apply(t, counts, group.rank) for t in tensors], sum(counts[:group.rank])


class _GatherRows(torch.autograd.Function):
    """All-gather of rows of unequal counts (padded to the longest); the backward sums every rank's gradient of
    the gathered rows and keeps this rank's own (all_reduce works on every backend, reduce_scatter does not)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, counts: list[int], rank: int) -> torch.Tensor:
        ctx.counts, ctx.rank = counts, rank
        padded = x.new_zeros((max(counts), *x.shape[1:]))
        padded[:len(x)] = x
        parts = [torch.empty_like(padded) for _ in counts]
        dist.all_gather(parts, padded.contiguous())
        return torch.cat([p[:n] for p, n in zip(parts, counts, strict=True)])

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        start = sum(ctx.counts[:ctx.rank])
        return grad[start:start + ctx.counts[ctx.rank]], None, None


# ---------------------------------------------------------------------------------------------- launching
def check_model(name: str, nproc: int) -> None:
    """A clear error before anything starts: N must be positive, and above 1 the model must be one of MODELS."""
    if nproc < 1:
        raise ValueError(f"--nproc is a number of processes, at least 1; got {nproc}")
    if nproc > 1 and name not in MODELS:
        raise ValueError(f"{name} cannot train on {nproc} processes: data-parallel training is for the neural "
                         f"models ({', '.join(MODELS)}); train {name} with --nproc 1")


def launch(data: Any, model: str, nproc: int, *, params: dict | None = None, seed: int | None = None,
           epochs: int | None = None, threads: int = 1, workspace: Path | None = None,
           out: Path | None = None) -> dict:
    """Fit `model` on the Dataset `data` in `nproc` processes under torchrun, each with `threads` threads.

    Rank 0 stores the result: a new active version in `workspace`, or the pickled model at `out`. The dataset is
    handed over as a pickle, so the workspace's store is read (and its features computed) once, by the caller.
    Returns rank 0's report: fit seconds, the version folder or `out`, the number of processes.
    """
    check_model(model, nproc)
    if (workspace is None) == (out is None):
        raise ValueError("launch stores the model in a workspace or at an `out` path: give exactly one")
    with tempfile.TemporaryDirectory(prefix="vendome-ddp-") as tmp:
        data_path, result = Path(tmp) / "data.pkl", Path(tmp) / "result.json"
        with open(data_path, "wb") as f:
            pickle.dump(data, f, protocol=pickle.HIGHEST_PROTOCOL)
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "vendome.training.distributed", "--data", str(data_path), "--model", model,
               "--params", json.dumps(params or {}), "--threads", str(max(1, threads)), "--result", str(result)]
        cmd += ["--seed", str(seed)] if seed is not None else []
        cmd += ["--epochs", str(epochs)] if epochs is not None else []
        cmd += ["--workspace", str(workspace)] if workspace is not None else ["--out", str(out)]
        env = os.environ | {"OMP_NUM_THREADS": str(max(1, threads))}
        code = subprocess.run(cmd, env=env).returncode
        if code != 0 or not result.exists():
            raise RuntimeError(f"distributed training of {model} on {nproc} processes failed (exit code {code}); "
                               "the ranks' errors are printed above")
        return json.loads(result.read_text())


def setup() -> DataParallel | None:
    """Join the process group torchrun describes in the environment: gloo for CPU tensors, NCCL for CUDA ones."""
    if "RANK" not in os.environ:
        raise SystemExit("vendome.training.distributed is started by torchrun, e.g. python -m "
                         "torch.distributed.run --standalone --nproc_per_node 2 -m vendome.training.distributed ...")
    backend = "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        backend = "cpu:gloo,cuda:nccl"
    dist.init_process_group(backend=backend, timeout=TIMEOUT)
    return DataParallel.current()


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def main(argv: list[str] | None = None) -> None:
    """One rank: load the dataset, fit the model in the process group; rank 0 stores it and reports."""
    ap = argparse.ArgumentParser(prog="vendome.training.distributed", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="pickled Dataset")
    ap.add_argument("--model", required=True, help=f"one of {', '.join(MODELS)}")
    ap.add_argument("--params", default="{}", help="hyper-parameters as a JSON object")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--threads", type=int, default=1, help="torch threads of each rank")
    ap.add_argument("--workspace", type=Path, help="store the model as the workspace's active version")
    ap.add_argument("--out", type=Path, help="or save the fitted model to this file")
    ap.add_argument("--result", type=Path, help="rank 0 writes its report (JSON) here")
    args = ap.parse_args(argv)
    from vendome.pipeline import build_model

    group = setup()
    try:
        world = group.world_size if group else 1
        check_model(args.model, world)
        with open(args.data, "rb") as f:
            data = pickle.load(f)
        model = build_model(args.model, json.loads(args.params), args.seed, args.epochs, args.threads)
        t0 = time.perf_counter()
        model.fit(data)
        seconds = time.perf_counter() - t0
        if group is None or group.is_main:
            report = {"seconds": seconds, "nproc": world}
            if args.workspace is not None:
                from vendome.artifacts import save_model
                from vendome.workspace import Workspace

                meta = {"fit_seconds": round(seconds, 3), "dataset": data.describe(), "nproc": world}
                report["folder"] = str(save_model(Workspace(args.workspace), model, meta))
            if args.out is not None:
                report["out"] = str(model.save(args.out))
            if args.result is not None:
                args.result.write_text(json.dumps(report))
        if group is not None:
            dist.barrier()          # nobody leaves while rank 0 saves: a rank tearing down early can abort in gloo
    finally:
        teardown()
    if group is not None:
        # Everything is written. Leave without running C++ destructors: gloo's can race with the other rank's exit
        # and abort ("terminate called without an active exception", SIGABRT), failing a finished run.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


if __name__ == "__main__":
    main()
