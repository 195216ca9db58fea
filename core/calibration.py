"""Temperature scaling, fitted on validation logits (numpy only, so any policy can use it).

One scalar T divides the masked logits before the softmax; T is chosen to minimise the
validation NLL (golden-section search on log T), which leaves the ranking, and so the chosen
action, unchanged while making ``confidence`` mean what it says.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

MASKED = -1e9
"""The logit given to invalid actions: exp underflows to exactly 0, and no NaN can appear."""


def masked_softmax(
    logits: npt.NDArray[np.float64], mask: npt.NDArray[np.bool_], temperature: float = 1.0
) -> npt.NDArray[np.float64]:
    """Softmax of ``logits / T`` over valid actions only (invalid actions get exactly 0)."""
    z = np.where(mask, logits / temperature, MASKED)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z) * mask
    out: npt.NDArray[np.float64] = e / e.sum(axis=1, keepdims=True)
    return out


def nll(
    logits: npt.NDArray[np.float64],
    mask: npt.NDArray[np.bool_],
    targets: npt.NDArray[np.int64],
    temperature: float,
) -> float:
    probs = masked_softmax(logits, mask, temperature)
    return float(-np.log(np.clip(probs[np.arange(len(targets)), targets], 1e-12, 1.0)).mean())


def fit_temperature(
    logits: npt.NDArray[np.float64],
    mask: npt.NDArray[np.bool_],
    targets: npt.NDArray[np.int64],
    *,
    low: float = 0.05,
    high: float = 20.0,
    iterations: int = 60,
) -> float:
    """The T in [low, high] minimising NLL (the NLL is unimodal in log T)."""
    a, b = math.log(low), math.log(high)
    ratio = (math.sqrt(5) - 1) / 2
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc = nll(logits, mask, targets, math.exp(c))
    fd = nll(logits, mask, targets, math.exp(d))
    for _ in range(iterations):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = nll(logits, mask, targets, math.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = nll(logits, mask, targets, math.exp(d))
    return float(math.exp((a + b) / 2))
