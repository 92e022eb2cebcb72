"""Exact search with and without the bfloat16 first pass, against torch exact top-k.

The question: does scoring in bfloat16, re-scoring ``max(3 k, k + 12)`` candidates in
float32 and certifying each answer by a worst-case error bound make exact search
faster on this machine, and how many queries does the bound fail to certify? The
answer went into ``BruteIndex`` (``REDUCED_EXACT_COST``, the candidate count) and
``benchmarks/RESULTS_recall.md`` ("Eleventh session").

Usage (from the repository root, with ``$SKSEMANTIC_DATA`` or ``--data``)::

    python benchmarks/investigations/exact_bfloat16.py
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from _common import data_dir, exact_topk  # noqa: E402

from sksemantic.neighbors import BruteIndex, _brute  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    d = data_dir(args.data)
    W = np.load(d / "wordnet_emb.npy").astype(np.float32)
    D = np.load(d / "debian_emb.npy").astype(np.float32)
    rng = np.random.default_rng(0)
    print("| case | queries | bfloat16 pass ms | float32 ms | torch exact ms | x torch | "
          "x float32 | not certified |")
    print("|---|---|---|---|---|---|---|---|")
    for name, X, Q in (("debian -> wordnet 100k", W[rng.permutation(len(W))[:100_000]], D),
                       ("wordnet -> debian 25k", D, W)):
        fast = BruteIndex("cosine").fit(X)
        plain = BruteIndex("cosine", reduced_precision=False).fit(X)
        for n_q in (1000, 10000):
            q = Q[rng.permutation(len(Q))[:n_q]]
            times = {"fast": [], "plain": [], "torch": []}
            for _ in range(args.repeat):  # interleaved, best of each
                for key, index in (("fast", fast), ("plain", plain), ("torch", None)):
                    t = time.perf_counter()
                    if index is None:
                        exact_topk(q, X, 10)
                    else:
                        index.query(q, 10)
                    times[key].append(time.perf_counter() - t)
            qp = q / np.linalg.norm(q, axis=1, keepdims=True)
            _, _, ok = _brute._certified_top(qp, np.ones(n_q), fast.X_, fast.sqnorm_,
                                             "cosine", 10)
            t = {key: min(v) for key, v in times.items()}
            print(f"| {name} | {n_q} | {t['fast'] * 1e3:.0f} | {t['plain'] * 1e3:.0f} | "
                  f"{t['torch'] * 1e3:.0f} | {t['torch'] / t['fast']:.2f} | "
                  f"{t['plain'] / t['fast']:.2f} | {1 - ok.mean():.3f} |", flush=True)


if __name__ == "__main__":
    main()
