"""Shared pieces of the benchmarks: where the data is, the exact baseline, recall, peers.

- Data: ``--data DIR`` or the ``SKSEMANTIC_DATA`` environment variable names the folder
  holding the real embeddings (``wordnet_emb.npy``, ``debian_emb.npy``, ...); on the
  project's machines ``../shared/data`` beside the repository is found by itself.
- The exact baseline is exact top-k done well: torch matrix products over query chunks
  with ``torch.topk`` (``util.semantic_search`` without its Python heap merge).
- Recall is tie-aware: a found item at least as close as the exact k-th counts, so that
  exact duplicates in a corpus do not make an exact method look approximate.
- Peers (semnet, semantic-id) run in the environment made by ``peers-venv``; its python
  is named by ``--peers-python`` or ``SKSEMANTIC_PEERS_PYTHON``.
"""

import os
import subprocess
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

__all__ = [
    "ROOT",
    "data_dir",
    "load_embeddings",
    "exact_topk",
    "tie_aware_recall",
    "peers_python",
    "timed",
]


def data_dir(explicit=None):
    """The folder of real embeddings: ``explicit``, ``$SKSEMANTIC_DATA``, or
    ``../shared/data`` beside the repository; a clear error when none exists."""
    for cand in (explicit, os.environ.get("SKSEMANTIC_DATA"), ROOT.parent / "shared" / "data"):
        if cand and Path(cand, "wordnet_emb.npy").is_file():
            return Path(cand)
    raise SystemExit(
        "No real embeddings found: pass --data DIR or set SKSEMANTIC_DATA to a folder "
        "holding wordnet_emb.npy (see ../shared/data/README.md on the project machines)."
    )


def load_embeddings(name, data=None):
    """float32 embeddings ``<name>_emb.npy`` (or ``<name>.npy``) from the data folder."""
    d = data_dir(data)
    path = d / f"{name}_emb.npy"
    if not path.is_file():
        path = d / f"{name}.npy"
    return np.load(path).astype(np.float32)


def exact_topk(Q, X, k, metric="cosine", chunk=1024):
    """Exact top-k (scores, ids) by torch products over query chunks and ``torch.topk``.

    For ``cosine`` the rows are normalised first (as ``util.semantic_search`` does);
    ``euclidean`` ranks by ``2 q.x - |x|^2``. Scores are float32, ids int64.
    """
    import torch

    q = torch.from_numpy(np.ascontiguousarray(Q, dtype=np.float32))
    x = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    if metric == "cosine":
        q = torch.nn.functional.normalize(q, dim=1)
        x = torch.nn.functional.normalize(x, dim=1)
    xsq = (x * x).sum(1) if metric == "euclidean" else None
    k = min(k, len(x))
    out_s = np.empty((len(q), k), dtype=np.float32)
    out_i = np.empty((len(q), k), dtype=np.int64)
    for s in range(0, len(q), chunk):
        S = q[s : s + chunk] @ x.T
        if xsq is not None:
            S = 2 * S - xsq
        v, i = torch.topk(S, k, dim=1)
        out_s[s : s + chunk], out_i[s : s + chunk] = v.numpy(), i.numpy()
    return out_s, out_i


def tie_aware_recall(Q, X, found, k, metric="cosine", exact_scores=None, rtol=1e-5):
    """Tie-aware recall@k of ``found`` ids (n_queries, >= k) against exact search.

    A found item counts when its exact float64 score is at least the exact k-th best
    score (less a relative tolerance): ties at the k-th place are all correct answers.
    Returns the mean and the per-query recalls.
    """
    Q = np.asarray(Q, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    if metric == "cosine":
        Q = Q / np.maximum(np.linalg.norm(Q, axis=1, keepdims=True), 1e-300)
        X = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-300)
    if exact_scores is None:
        exact_scores = exact_topk(Q, X, k, metric)[0]
    kth = np.asarray(exact_scores, dtype=np.float64)[:, k - 1]
    found = np.asarray(found)[:, :k]
    valid = found >= 0
    F = X[np.maximum(found, 0)]
    s = np.einsum("qkd,qd->qk", F, Q)
    if metric == "euclidean":
        s = 2 * s - np.einsum("qkd,qkd->qk", F, F)
    ok = valid & (s >= kth[:, None] - rtol * np.maximum(1.0, np.abs(kth[:, None])))
    # Each id counts once.
    per_query = np.array([len(set(f[o].tolist())) for f, o in zip(found, ok, strict=True)]) / k
    return float(per_query.mean()), per_query


def peers_python(explicit=None):
    """The python of the peers' environment (semnet, semantic-id), or None."""
    for cand in (explicit, os.environ.get("SKSEMANTIC_PEERS_PYTHON")):
        if cand and Path(cand).exists():
            return str(cand)
    tool = ROOT.parent / "shared" / "tools" / "peers-venv"
    if tool.exists():
        try:
            out = subprocess.run([str(tool)], capture_output=True, text=True, check=True)
            return out.stdout.strip().splitlines()[-1]
        except (subprocess.CalledProcessError, IndexError):
            return None
    return None


def timed(fn, *args, repeat=1, **kwargs):
    """(best seconds over ``repeat`` runs, result of the last run)."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn(*args, **kwargs)
        best = min(best, time.perf_counter() - t)
    return best, out
