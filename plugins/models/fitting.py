"""The one training loop, shared by the classification policies (``mlp``, ``joint``) and the
outcome heads (``value``).

AdamW over shuffled mini-batches (a seeded generator: same data and seed, same model), a check
for non-finite losses and gradients after every step (the message names the epoch, batch and
parameter), early stopping on the validation loss with the best weights restored. What a model
learns is its ``loss_of(batch)``; the loop does not know whether the batch holds labels or
outcomes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from swarm_planner.core.errors import PlannerError
from swarm_planner.core.progress import Progress


class TrainingError(PlannerError, RuntimeError):
    """Training stopped on a failed feasibility check; the message says which and why."""


@attrs.frozen
class LoopConfig:
    lr: float
    weight_decay: float
    batch_size: int
    max_epochs: int
    patience: int
    seed: int

    @classmethod
    def of(cls, config: Any) -> LoopConfig:
        """The loop's part of a model's training config (the same field names everywhere)."""
        return cls(
            config.lr,
            config.weight_decay,
            config.batch_size,
            config.max_epochs,
            config.patience,
            config.seed,
        )


@attrs.frozen
class FitResult:
    best_loss: float
    best_epoch: int
    history: list[dict[str, float]]


def fit(
    net: Any,
    train: Sequence[Any],
    val: Sequence[Any],
    loss_of: Callable[[Any], Any],
    config: LoopConfig,
    *,
    progress: Progress | None = None,
) -> FitResult:
    """Train ``net`` in place on ``train`` (tensors sharing their first dimension), stopping
    early on ``loss_of(val)``; the best epoch's weights are loaded back."""
    import torch

    optimizer = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    best_loss, best_state, best_epoch, stale = math.inf, None, -1, 0
    history: list[dict[str, float]] = []
    n_train = int(train[0].shape[0])
    for epoch in range(config.max_epochs):
        net.train()
        order = torch.randperm(n_train, generator=generator)
        total = 0.0
        for b, start in enumerate(range(0, n_train, config.batch_size)):
            rows = order[start : start + config.batch_size]
            loss = loss_of(tuple(t[rows] for t in train))
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"the training loss became {loss.item()} at epoch {epoch}, batch {b}; "
                    "lower --lr or check the dataset for extreme values"
                )
            optimizer.zero_grad()
            loss.backward()
            for name, param in net.named_parameters():
                if param.grad is not None and not torch.isfinite(param.grad).all():
                    raise TrainingError(
                        f"a non-finite gradient appeared in {name} at epoch {epoch}, batch {b}"
                    )
            optimizer.step()
            total += loss.item() * len(rows)
        net.eval()
        with torch.no_grad():
            val_loss = float(loss_of(val).item())
        history.append({"epoch": epoch, "train_loss": total / n_train, "val_loss": val_loss})
        if progress is not None:
            progress(epoch + 1, config.max_epochs)
        if val_loss < best_loss - 1e-5:
            best_loss, best_epoch, stale = val_loss, epoch, 0
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            stale += 1
            if stale >= config.patience:
                break
    if best_state is None:
        raise TrainingError("no epoch gave a finite validation loss")
    net.load_state_dict(best_state)
    return FitResult(best_loss, best_epoch, history)
