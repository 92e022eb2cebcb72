"""Two IVF design questions, measured: fewer larger lists, and adaptive per-query probing.

1. ``lists``: recall@10 (against exact), points scanned per query and batch throughput
   of ``IVFIndex`` with 1,265 (the default at 100,000 items), 900 and 632 lists, at
   ``n_probe`` values giving recall near 0.95-0.96. Fewer lists make each list product
   larger (better BLAS efficiency) but need more points for the same recall.
2. ``training``: the same for the default 1,265 lists trained on 20 (the default), 40
   and 64 rows per list (``IVFIndex._TRAIN_PER_LIST``), at the ``n_probe`` values
   that give about the default's recall.
3. ``adaptive``: for the default index, the recall@10 reachable against the mean number
   of points scanned with a fixed ``n_probe``, with a per-query rule on the gap between
   the best centre score and the 40th (``gap``), and with a per-query point budget
   (``budget``). Recall here is the share of true top-10 neighbours whose list is probed
   (no timing).

Data: 100,000 WordNet MiniLM embeddings and their held-out definitions and lemma queries
from ``../shared/data``, as in ``bench_search.py``.

Usage (from the repository root; a few minutes on 2 cores)::

    python benchmarks/ivf_design_checks.py [--part lists|training|adaptive|all]
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_search import load_corpora  # noqa: E402

from sksemantic.neighbors import prepare  # noqa: E402
from sksemantic.neighbors._ivf import IVFIndex  # noqa: E402


def exact_top10(Q, X):
    S = Q @ X.T
    top = np.argpartition(-S, 10, axis=1)[:, :10]
    return top, np.take_along_axis(S, top, 1).min(axis=1)


def part_lists(X, Q, settings=((1265, 20, (48, 55)), (900, 20, (40, 46)),
                                (632, 20, (30, 36, 40)))):
    _, kth = exact_top10(Q, X)
    print("n_lists rows/list n_probe  points/query  recall@10  q/s (1k batch)  q/s (10k batch)  build s")
    for n_lists, per_list, probes in settings:
        index = IVFIndex(n_lists=n_lists, random_state=0)
        index._TRAIN_PER_LIST = per_list
        build = _timed(index.fit, X)
        for n_probe in probes:
            index.n_probe = n_probe
            points = np.diff(index.offsets_)[index._probe(prepare(Q[:2000], "cosine")[0], n_probe)]
            rates = {}
            for nq in (1000, 10000):
                index.query(Q[:100], 10)
                best = min(_timed(index.query, Q[:nq], 10) for _ in range(3))
                rates[nq] = nq / best
            ids = index.query(Q, 10)[1]
            found = np.einsum("qd,qkd->qk", Q, X[ids])
            recall = float((found >= kth[:, None] - 1e-6).sum(1).clip(max=10).mean() / 10)
            print(f"{n_lists:7d} {per_list:9d} {n_probe:7d} {points.sum(1).mean():13.0f} "
                  f"{recall:10.3f} {rates[1000]:15.0f} {rates[10000]:16.0f} {build:8.1f}",
                  flush=True)


def _timed(fn, *args):
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


def part_adaptive(X, queries):
    index = IVFIndex(random_state=0).fit(X)
    n_lists = index.n_lists_
    list_of = np.empty(len(X), dtype=np.int64)
    list_of[index.perm_] = np.repeat(np.arange(n_lists), np.diff(index.offsets_))
    sizes = np.diff(index.offsets_)
    for name, Q in queries:
        Q = Q[:3000]
        top, _ = exact_top10(Q, X)
        G = 2 * (Q @ index.centers_.T) - index.centers_sqnorm_
        order = np.argsort(-G, axis=1)
        rank = np.empty_like(order)
        rank[np.arange(len(Q))[:, None], order] = np.arange(n_lists)
        needed = rank[np.arange(len(Q))[:, None], list_of[top]]
        cum = np.cumsum(sizes[order], axis=1)
        Gs = np.take_along_axis(G, order, axis=1)

        def report(label, n_probe, needed=needed, cum=cum):
            recall = float((needed < n_probe[:, None]).mean())
            points = float(cum[np.arange(len(cum)), n_probe - 1].mean())
            print(f"  {label:32s} recall {recall:.3f}  points/query {points:6.0f}  "
                  f"mean lists {n_probe.mean():5.1f}")

        print(name)
        for p in (40, 48, 55, 64):
            report(f"fixed n_probe={p}", np.full(len(Q), p))
        for delta in (0.8, 1.0, 1.2):
            ref = Gs[:, 0] - delta * (Gs[:, 0] - Gs[:, 39])
            report(f"gap delta={delta} (20-80 lists)", np.clip((Gs >= ref[:, None]).sum(1), 20, 80))
        for budget in (3500, 4000, 4500, 5000):
            report(f"point budget {budget}", np.clip((cum < budget).sum(1) + 1, 1, n_lists))


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--part", choices=("lists", "training", "adaptive", "all"), default="all")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    (_, X, qsets), = load_corpora(Path(args.data), 100000, 10000, rng, True)
    if args.part in ("lists", "all"):
        part_lists(X, qsets[0][1])
    if args.part in ("training", "all"):
        part_lists(X, qsets[0][1], ((1265, 20, (55,)), (1265, 40, (49, 51, 55)),
                                    (1265, 64, (49, 53))))
    if args.part in ("adaptive", "all"):
        part_adaptive(X, qsets)


if __name__ == "__main__":
    main()
