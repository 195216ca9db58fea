"""The torch networks behind the ``mlp`` and ``joint`` policies (imported only when needed).

Both share the trunk: an embedding gather with a weighted sum over the sparse ids (an
embedding bag, written as Gather + MatMul so it exports to a small, fast ONNX graph), then
LayerNorm/ReLU layers. They differ in the head:

- ``mlp``: four heads (swarm, candidates, minutes, iterations); the logit of a joint action is
  the sum of its four head logits, so the masked softmax over joint actions is exactly the
  product of the heads renormalised over *valid* tuples: hard masking at training and inference,
  and decoding picks the best valid tuple, not the per-head argmaxes;
- ``joint``: one logit per action tuple (the baseline that tells whether factorizing hurts);
- ``mlp-ar``: ``mlp``'s trunk with autoregressive heads (see :func:`autoregressive_heads`);
- ``transformer``: the same factorized heads, but the issue is read by a small pre-norm
  Transformer encoder over its tokens instead of the embedding bag: each sparse id is a token
  (its embedding scaled by its weight; history ids are per slot, so a run's tokens carry their
  slot), attention lets the issue's facts and its history runs read each other, and a mean over
  the real tokens (padding has weight 0 and is masked out of attention) feeds the heads.

Invalid tuples get a large negative logit before the softmax, at training and at inference.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

MASKED = -1e9
KINDS = ("mlp", "joint", "transformer", "mlp-ar")


def autoregressive_heads(
    width: int, head_index: npt.NDArray[np.int64], head_sizes: Sequence[int]
) -> tuple[nn.ModuleList, list[torch.Tensor]]:
    """Heads in the order swarm → candidates | swarm → minutes | swarm → iterations | swarm,
    candidates: each later head has one set of logits per value of what it is conditioned on
    (a candidates head per swarm, an iterations head per swarm and candidate count). A tuple's
    logit is ``S[s] + C[s, c] + M[s, m] + I[s, c, i]``: the chain rule's factors, read for
    every tuple at once, so the masked softmax over valid tuples is the autoregressive model's
    exact joint distribution renormalised over what the rules allow, and decoding takes the
    best valid tuple, not the head-by-head greedy path (which can end in an invalid or a worse
    tuple). Every head is linear in the trunk's output, so the export folds them into one
    layer exactly as it does ``mlp``'s."""
    n_swarm, n_cand, n_min, n_iter = (int(x) for x in head_sizes)
    s, c, m, i = (head_index[:, h] for h in range(4))
    heads = nn.ModuleList(
        [
            nn.Linear(width, n_swarm),
            nn.Linear(width, n_swarm * n_cand),
            nn.Linear(width, n_swarm * n_min),
            nn.Linear(width, n_swarm * n_cand * n_iter),
        ]
    )
    columns = [s, s * n_cand + c, s * n_min + m, (s * n_cand + c) * n_iter + i]
    return heads, [torch.as_tensor(col, dtype=torch.long) for col in columns]


class TokenLayer(nn.Module):
    """One pre-norm Transformer layer: self-attention, then a feed-forward, each added back.
    Written out (not ``nn.TransformerEncoderLayer``) so that it exports to plain ONNX ops
    whose shapes follow the input's batch and token count."""

    def __init__(self, dim: int, heads: int, ff: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not a multiple of heads {heads}")
        self.heads = heads
        self.scale = float((dim // heads) ** -0.5)
        self.norm_attention = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm_ff = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, ff), nn.ReLU(), nn.Linear(ff, dim))

    def forward(self, x: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        """``x [B, T, D]``; ``padding [B, 1, 1, T]``: 0 for a real token, MASKED for padding."""
        b, t, d = x.shape
        qkv = self.qkv(self.norm_attention(x)).reshape(b, t, 3, self.heads, d // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [B, H, T, D/H]
        attention = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * self.scale + padding, -1)
        read = torch.matmul(attention, v).transpose(1, 2).reshape(b, t, d)
        x = x + self.proj(read)
        out: torch.Tensor = x + self.ff(self.norm_ff(x))
        return out


class TokenEncoder(nn.Module):
    """A small pre-norm Transformer encoder over a padded token sequence (no dropout:
    training stays deterministic and the networks are small)."""

    def __init__(self, dim: int, hidden: Sequence[int], layers: int, heads: int) -> None:
        super().__init__()
        ff = int(hidden[0]) if hidden else 2 * dim
        self.layers = nn.ModuleList(TokenLayer(dim, heads, ff) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        padding = ((~real).to(x.dtype) * MASKED).unsqueeze(1).unsqueeze(1)
        for layer in self.layers:
            x = layer(x, padding)
        out: torch.Tensor = self.norm(x)
        return out


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
        layers: int = 2,
        heads: int = 4,
    ) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"model kind {kind!r} is not one of {'|'.join(KINDS)}")
        self.kind = kind
        self.trunk: nn.Module
        if kind == "transformer":
            self.embedding, self.encoder, self.trunk = token_reader(
                n_features, dim, hidden, layers, heads
            )
            width = dim
        else:
            self.embedding, self.trunk, width = issue_trunk(n_features, dim, hidden)
        self.n_actions = int(head_index.shape[0])
        self.head_columns = [
            torch.as_tensor(head_index[:, h], dtype=torch.long) for h in range(head_index.shape[1])
        ]
        if kind == "joint":
            self.joint = nn.Linear(width, self.n_actions)
        elif kind == "mlp-ar":
            self.heads, self.head_columns = autoregressive_heads(width, head_index, head_sizes)
        else:
            self.heads = nn.ModuleList(nn.Linear(width, int(s)) for s in head_sizes)

    def encode(self, ids: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """The issue as one vector ``[B, width]``: what every head reads."""
        if self.kind != "transformer":
            hidden: torch.Tensor = self.trunk(pool(self.embedding, ids, weights))
            return hidden
        out: torch.Tensor = self.trunk(read_tokens(self.embedding, self.encoder, ids, weights))
        return out

    def logits(self, ids: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Unmasked logits ``[B, A]`` over every action tuple."""
        hidden = self.encode(ids, weights)
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


def token_reader(
    n_features: int, dim: int, hidden: Sequence[int], layers: int, heads: int
) -> tuple[nn.Embedding, TokenEncoder, nn.LayerNorm]:
    """The transformer's reading of an issue: the token table, the encoder, the final norm
    (what the transformer policy and the value model's transformer reader share)."""
    embedding = nn.Embedding(n_features, dim)
    nn.init.normal_(embedding.weight, std=0.05)
    return embedding, TokenEncoder(dim, hidden, layers, heads), nn.LayerNorm(dim)


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


def read_tokens(
    embedding: nn.Embedding, encoder: nn.Module, ids: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """The transformer's reading: tokens (embedding × weight) attended over, padding (weight 0)
    masked out, then the mean of the real tokens."""
    tokens = embedding(ids) * weights.unsqueeze(-1)
    real = weights != 0
    # An input with no token at all would attend to nothing (NaN): give it its first slot.
    real = real | (torch.arange(real.shape[1]) == 0).unsqueeze(0)
    read = encoder(tokens, real)
    keep = real.unsqueeze(-1).to(read.dtype)
    pooled: torch.Tensor = (read * keep).sum(dim=1) / keep.sum(dim=1)
    return pooled


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
        reader: str = "bag",
        layers: int = 2,
        heads: int = 4,
    ) -> None:
        super().__init__()
        if reader not in ("bag", "transformer"):
            raise ValueError(f"reader {reader!r} is not one of bag|transformer")
        self.reader = reader
        self.trunk: nn.Module
        if reader == "transformer":  # the transformer policy's reading of the issue
            self.embedding, self.encoder, self.trunk = token_reader(
                n_features, dim, hidden, layers, heads
            )
            width = dim
        else:
            self.embedding, self.trunk, width = issue_trunk(n_features, dim, hidden)
        self.register_buffer("phi", torch.as_tensor(action_features))
        self.issue_proj = nn.Linear(width, action_dim)
        self.action_proj = nn.Linear(action_features.shape[1], action_dim, bias=False)
        self.body = nn.Sequential(
            nn.ReLU(), nn.Linear(action_dim, action_dim), nn.ReLU(), nn.Linear(action_dim, 3)
        )

    def read(self, ids: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """The issue as one vector: the embedding bag and trunk, or the transformer's reading."""
        if self.reader == "transformer":
            out: torch.Tensor = self.trunk(read_tokens(self.embedding, self.encoder, ids, weights))
            return out
        bag: torch.Tensor = self.trunk(pool(self.embedding, ids, weights))
        return bag

    def forward(
        self, ids: torch.Tensor, weights: torch.Tensor, actions: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Raw outputs ``[B, A, 3]`` for every action tuple, or ``[B, K, 3]`` for the tuples
        ``actions [B, K]`` (training reads only the tried ones: K of A, many times cheaper)."""
        hidden = self.issue_proj(self.read(ids, weights)).unsqueeze(1)
        projected = self.action_proj(self.phi)
        if actions is None:
            out: torch.Tensor = self.body(hidden + projected.unsqueeze(0))
        else:
            out = self.body(hidden + projected[actions])
        return out
