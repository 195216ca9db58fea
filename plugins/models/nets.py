"""The torch networks behind the ``mlp`` and ``joint`` policies (imported only when needed).

Both share the trunk: an embedding gather with a weighted sum over the sparse ids (an
embedding bag, written as Gather + MatMul so it exports to a small, fast ONNX graph), then
LayerNorm/ReLU layers. They differ in the head:

- ``mlp``: four heads (swarm, candidates, minutes, iterations); the logit of a joint action is
  the sum of its four head logits, so the masked softmax over joint actions is exactly the
  product of the heads renormalised over *valid* tuples: hard masking at training and inference,
  and decoding picks the best valid tuple, not the per-head argmaxes;
- ``joint``: one logit per action tuple (the baseline that tells whether factorizing hurts).

Invalid tuples get a large negative logit before the softmax, at training and at inference.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

MASKED = -1e9


class PlannerNet(nn.Module):
    def __init__(
        self,
        *,
        kind: str,
        n_features: int,
        head_index: npt.NDArray[np.int64],
        head_sizes: Sequence[int],
        dim: int = 32,
        hidden: Sequence[int] = (128, 64),
    ) -> None:
        super().__init__()
        if kind not in ("mlp", "joint"):
            raise ValueError(f"model kind {kind!r} is not one of mlp|joint")
        self.kind = kind
        self.embedding, self.trunk, width = issue_trunk(n_features, dim, hidden)
        self.n_actions = int(head_index.shape[0])
        self.head_columns = [
            torch.as_tensor(head_index[:, h], dtype=torch.long) for h in range(head_index.shape[1])
        ]
        if kind == "mlp":
            self.heads = nn.ModuleList(nn.Linear(width, int(s)) for s in head_sizes)
        else:
            self.joint = nn.Linear(width, self.n_actions)

    def logits(self, ids: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Unmasked logits ``[B, A]`` over every action tuple."""
        hidden = self.trunk(pool(self.embedding, ids, weights))
        if self.kind == "joint":
            out: torch.Tensor = self.joint(hidden)
            return out
        total = torch.zeros((hidden.shape[0], self.n_actions), dtype=hidden.dtype)
        for columns, head in zip(self.head_columns, self.heads, strict=True):
            total = total + head(hidden)[:, columns]
        return total

    def forward(
        self,
        ids: torch.Tensor,
        weights: torch.Tensor,
        mask: torch.Tensor,
        temperature: torch.Tensor,
    ) -> torch.Tensor:
        """Probabilities ``[B, A]``: masked, temperature-scaled softmax (invalid tuples are 0)."""
        scaled = self.logits(ids, weights) / temperature
        masked = torch.where(mask, scaled, torch.full_like(scaled, MASKED))
        return torch.softmax(masked, dim=-1)


def issue_trunk(
    n_features: int, dim: int, hidden: Sequence[int]
) -> tuple[nn.Embedding, nn.Sequential, int]:
    """The embedding bag's table and the LayerNorm/Linear/ReLU trunk every planner network
    reads an issue with, and the trunk's output width."""
    embedding = nn.Embedding(n_features, dim)
    nn.init.normal_(embedding.weight, std=0.05)
    layers: list[nn.Module] = [nn.LayerNorm(dim)]
    width = dim
    for size in hidden:
        layers += [nn.Linear(width, size), nn.ReLU(), nn.LayerNorm(size)]
        width = size
    return embedding, nn.Sequential(*layers), width


def pool(embedding: nn.Embedding, ids: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The embedding bag: ``Σ_t weights[t] · E[ids[t]]``, as one batched MatMul (what exports
    to the fastest ONNX graph; padding has weight 0)."""
    return torch.matmul(weights.unsqueeze(1), embedding(ids)).squeeze(1)


def masked_log_softmax(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    masked = torch.where(mask, logits, torch.full_like(logits, MASKED))
    return torch.log_softmax(masked, dim=-1)


class ValueNet(nn.Module):
    """The outcome model: ``[B, A, 3]`` raw outputs (pass logit, duration, cost before
    softplus) for every action tuple. The issue goes through the same trunk as the policies;
    each action through a learned projection of its bin features; a small network reads their
    sum, so issues and actions share one representation."""

    def __init__(
        self,
        *,
        n_features: int,
        action_features: npt.NDArray[np.float32],
        dim: int = 32,
        hidden: Sequence[int] = (128, 64),
        action_dim: int = 64,
    ) -> None:
        super().__init__()
        self.embedding, self.trunk, width = issue_trunk(n_features, dim, hidden)
        self.register_buffer("phi", torch.as_tensor(action_features))
        self.issue_proj = nn.Linear(width, action_dim)
        self.action_proj = nn.Linear(action_features.shape[1], action_dim, bias=False)
        self.body = nn.Sequential(
            nn.ReLU(), nn.Linear(action_dim, action_dim), nn.ReLU(), nn.Linear(action_dim, 3)
        )

    def forward(
        self, ids: torch.Tensor, weights: torch.Tensor, actions: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Raw outputs ``[B, A, 3]`` for every action tuple, or ``[B, K, 3]`` for the tuples
        ``actions [B, K]`` (training reads only the tried ones: K of A, many times cheaper)."""
        hidden = self.issue_proj(self.trunk(pool(self.embedding, ids, weights))).unsqueeze(1)
        projected = self.action_proj(self.phi)
        if actions is None:
            out: torch.Tensor = self.body(hidden + projected.unsqueeze(0))
        else:
            out = self.body(hidden + projected[actions])
        return out
