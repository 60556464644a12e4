"""Gradient-boosted decision trees for binary labels, in plain numpy (no scikit-learn).

A small model for small tables (thousands of rows, tens of columns): logistic loss, trees of a
fixed depth grown level by level on per-feature quantile bins (a histogram of gradient and
hessian per bin, as LightGBM does), Newton leaf values with an L2 penalty, shrinkage. No
sampling: the same table always gives the same trees.

A fitted model is four arrays, the trees in heap order (node ``i``'s children are ``2i + 1``
and ``2i + 2``; the last level is the leaves), so it serialises to a few kilobytes of JSON:

- ``feature`` (T, 2**D - 1) int: the column each inner node splits on;
- ``threshold`` (T, 2**D - 1) float: a row goes right when its value is ``> threshold``
  (``+inf``: the node does not split, every row goes left);
- ``leaf`` (T, 2**D) float: the leaf values (log-odds);
- ``bias``: the starting log-odds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["BoostedTrees", "fit_boosted_trees"]


@dataclass(frozen=True)
class BoostedTrees:
    """A fitted ensemble (see the module doc for the layout)."""

    feature: np.ndarray
    threshold: np.ndarray
    leaf: np.ndarray
    bias: float

    @property
    def depth(self) -> int:
        return int(round(np.log2(self.leaf.shape[1])))

    def decision(self, x: np.ndarray) -> np.ndarray:
        """Log-odds of each row of ``x`` ((n, F) float); NaN goes left."""
        x = np.asarray(x, dtype=np.float64)
        n = x.shape[0]
        n_trees = self.feature.shape[0]
        if n == 0 or n_trees == 0:
            return np.full(n, self.bias, np.float64)
        node = np.zeros((n_trees, n), np.int64)
        rows = np.arange(n)[None, :]
        trees = np.arange(n_trees)[:, None]
        for _ in range(self.depth):
            column = self.feature[trees, node]
            right = x[rows, column] > self.threshold[trees, node]
            node = 2 * node + 1 + right
        first_leaf = self.leaf.shape[1] - 1
        return self.bias + self.leaf[trees, node - first_leaf].sum(axis=0)

    def probability(self, x: np.ndarray) -> np.ndarray:
        """P(label 1) of each row of ``x``."""
        return 1.0 / (1.0 + np.exp(-self.decision(x)))


def fit_boosted_trees(
    x: np.ndarray,
    y: np.ndarray,
    *,
    weights: np.ndarray | None = None,
    n_trees: int = 150,
    depth: int = 3,
    learning_rate: float = 0.1,
    l2: float = 1.0,
    min_child_weight: float = 2.0,
    n_bins: int = 32,
) -> BoostedTrees:
    """Fit trees to minimise the weighted logistic loss of ``y`` given ``x``.

    Parameters
    ----------
    x : (n, F) float
        Features; NaN is treated as the smallest value.
    y : (n,) bool or {0, 1}
    weights : (n,) float, optional
        Per-row weight (default 1).
    n_trees, depth : int
        Number of trees and their depth (``2**depth`` leaves each).
    learning_rate : float
        Shrinkage of each tree's leaf values, in (0, 1].
    l2 : float
        L2 penalty on leaf values (Newton step ``-G / (H + l2)``).
    min_child_weight : float
        Least hessian sum a child may hold; smaller splits are not made.
    n_bins : int
        Candidate thresholds per feature: quantiles of its values.

    Returns
    -------
    BoostedTrees
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"x must be (n, F) with n = len(y); got {x.shape} and {y.shape}")
    if not 0.0 < learning_rate <= 1.0:
        raise ValueError(f"learning_rate must be in (0, 1], got {learning_rate}")
    n, n_features = x.shape
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    x = np.where(np.isnan(x), -np.inf, x)
    edges = [_bin_edges(x[:, j], n_bins) for j in range(n_features)]
    binned = np.stack([np.searchsorted(edges[j], x[:, j], side="left") for j in range(n_features)], axis=1)
    # binned[i, j] = b means edges[j][b - 1] < x <= edges[j][b]: "x > edges[j][b]" splits after bin b.
    positive = float(np.sum(w * y))
    total = float(np.sum(w))
    p0 = min(max(positive / max(total, 1e-12), 1e-6), 1.0 - 1e-6)
    bias = float(np.log(p0 / (1.0 - p0)))
    score = np.full(n, bias)
    inner = 2**depth - 1
    features = np.zeros((n_trees, inner), np.int64)
    thresholds = np.full((n_trees, inner), np.inf)
    leaves = np.zeros((n_trees, 2**depth))
    for t in range(n_trees):
        p = 1.0 / (1.0 + np.exp(-score))
        grad = w * (p - y)
        hess = w * np.maximum(p * (1.0 - p), 1e-6)
        node = np.zeros(n, np.int64)
        for level in range(depth):
            first = 2**level - 1
            for i in range(first, first + 2**level):
                rows = node == i
                split = _best_split(binned[rows], grad[rows], hess[rows], edges, l2, min_child_weight)
                if split is not None:
                    features[t, i], thresholds[t, i] = split
            column = features[t, node]
            node = 2 * node + 1 + (x[np.arange(n), column] > thresholds[t, node])
        leaf_index = node - inner
        g = np.bincount(leaf_index, weights=grad, minlength=2**depth)
        h = np.bincount(leaf_index, weights=hess, minlength=2**depth)
        leaves[t] = -learning_rate * g / (h + l2)
        score += leaves[t, leaf_index]
    return BoostedTrees(feature=features, threshold=thresholds, leaf=leaves, bias=bias)


def _bin_edges(values: np.ndarray, n_bins: int) -> np.ndarray:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.zeros(0)
    qs = np.quantile(finite, np.linspace(0.0, 1.0, n_bins + 1)[1:-1])
    return np.unique(qs)


def _best_split(binned, grad, hess, edges, l2, min_child_weight):
    """(feature, threshold) of the largest loss reduction at one node, or None."""
    g_total, h_total = grad.sum(), hess.sum()
    if h_total < 2.0 * min_child_weight:
        return None
    parent = g_total * g_total / (h_total + l2)
    best_gain, best = 1e-9, None
    for j, edge in enumerate(edges):
        if edge.size == 0:
            continue
        g_bins = np.bincount(binned[:, j], weights=grad, minlength=edge.size + 1)
        h_bins = np.bincount(binned[:, j], weights=hess, minlength=edge.size + 1)
        g_left = np.cumsum(g_bins)[:-1]
        h_left = np.cumsum(h_bins)[:-1]
        g_right, h_right = g_total - g_left, h_total - h_left
        valid = (h_left >= min_child_weight) & (h_right >= min_child_weight)
        if not valid.any():
            continue
        gain = g_left**2 / (h_left + l2) + g_right**2 / (h_right + l2) - parent
        gain = np.where(valid, gain, -np.inf)
        b = int(np.argmax(gain))
        if gain[b] > best_gain:
            best_gain, best = float(gain[b]), (j, float(edge[b]))
    return best
