import pytest
import torch

from vendome.training.loop import TrainConfig, Trainer


class Line(torch.nn.Module):
    """Fits y = 3x; `loss` takes (x, y) batches."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def loss(self, batch):
        x, y = batch
        return ((self.w * x - y) ** 2).mean()


class Data:
    def __init__(self, n_batches: int = 5) -> None:
        self.n = n_batches

    def __len__(self) -> int:
        return self.n

    def epoch(self, epoch: int):
        g = torch.Generator().manual_seed(epoch)
        for _ in range(self.n):
            x = torch.randn(16, generator=g)
            yield x, 3 * x


def test_training_fits_and_records_history():
    model = Line()
    history = Trainer(model, TrainConfig(epochs=30, lr=0.1)).fit(Data(), validate=lambda: -abs(3 - model.w.item()))
    assert abs(model.w.item() - 3) < 0.1
    assert history.losses[-1] < history.losses[0] and len(history.epoch_seconds) == len(history.losses)


def test_early_stopping_restores_the_best_validated_weights():
    model = Line()
    scores = iter([0.1, 0.5, 0.3, 0.2, 0.1, 0.0, 0.0])
    weights = []

    def validate():
        weights.append(model.w.item())
        return next(scores)

    history = Trainer(model, TrainConfig(epochs=50, lr=0.1, patience=3)).fit(Data(), validate)
    assert history.best_epoch == 1 and len(history.metrics) == 5     # stopped after three worse validations
    assert "no improvement" in history.stopped
    assert model.w.item() == pytest.approx(weights[1])


def test_a_time_budget_stops_training():
    history = Trainer(Line(), TrainConfig(epochs=10_000, max_minutes=0.002)).fit(Data(200))
    assert "time budget" in history.stopped and len(history.losses) < 10_000


def test_same_seed_same_run():
    runs = []
    for _ in range(2):
        model = torch.nn.Sequential(torch.nn.Dropout(0.5))  # randomness in the forward pass
        lin = Line()
        lin.drop = model
        Trainer(lin, TrainConfig(epochs=3, lr=0.05, seed=7)).fit(Data())
        runs.append(lin.w.item())
    assert runs[0] == runs[1]


def test_an_interrupted_run_resumes_from_its_checkpoint_and_ends_where_a_straight_run_ends(tmp_path):
    straight = Line()
    Trainer(straight, TrainConfig(epochs=6, lr=0.05, seed=1)).fit(Data(), validate=lambda: -abs(3 - straight.w.item()))

    first = Line()
    cfg = TrainConfig(epochs=3, lr=0.05, seed=1, checkpoint_dir=str(tmp_path))
    Trainer(first, cfg).fit(Data(), validate=lambda: -abs(3 - first.w.item()))
    assert (tmp_path / "last.pt").exists() and not list(tmp_path.glob("*.tmp"))
    resumed = Line()
    cfg.epochs = 6
    history = Trainer(resumed, cfg).fit(Data(), validate=lambda: -abs(3 - resumed.w.item()))
    assert len(history.losses) == 6 and history.best_epoch == 5
    assert abs(first.w.item() - resumed.w.item()) > 0.01          # it did train on after the interruption
    assert resumed.w.item() == pytest.approx(straight.w.item(), abs=1e-6)


def test_threads_is_a_setting():
    Trainer(Line(), TrainConfig(epochs=1, threads=1)).fit(Data(1))
    assert torch.get_num_threads() == 1
