"""Batch throughput of IVF and HNSW against the exact baseline, interleaved round by round.

On a shared machine the exact baseline's throughput drifts within a run, so a ratio taken
against a baseline measured minutes earlier (as in ``bench_search.py``) swings. Here
every round times the exact baseline, the default IVF index and HNSW (at its default
``ef_search`` and at the values given) back to back on the same 1,000 held-out WordNet
queries, or ``--batch`` of them (100,000-item corpus from
``../shared/data``, as in ``bench_search.py``; each the best of three), and prints each
index's throughput as a multiple of that round's baseline, with recall@10 against it.
HNSW needs the ``hnsw`` extra (hnswlib).

Usage (from the repository root; about three minutes on 2 cores)::

    python benchmarks/small_batches.py [--rounds 5] [--batch 1000] [--ef-search 24]
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_search as B  # noqa: E402

from sksemantic.search import SemanticSearch  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--ef-search", default="24",
                        help="HNSW ef_search values besides the default, comma-separated")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    (_, X, query_sets), = B.load_corpora(args.data, 100_000, args.batch, rng, quick=True)
    Q = query_sets[0][1][: args.batch]
    fn, fn_name = B._semantic_search_fn()
    exact, _ = B.build_exact(X, 10, fn)
    methods = {"exact": exact}
    ivf = SemanticSearch(random_state=0).fit(X)
    methods["ivf"] = lambda q: ivf.kneighbors(q, 10, return_distance=False)
    hnsw = SemanticSearch(algorithm="hnsw", random_state=0).fit(X)
    for ef in [None] + [int(v) for v in filter(None, args.ef_search.split(","))]:
        def query(q, ef=ef):
            # One build, several ef: ef_search only acts at query time, so it is set on
            # the fitted index (as refitting with SemanticSearch(ef_search=ef) would).
            hnsw.index_.ef_search = ef
            return hnsw.kneighbors(q, 10, return_distance=False)

        methods[f"hnsw ef_search={ef or 'default'}"] = query
    truth = exact(Q)
    X64, Q64 = B._unit64(X), B._unit64(Q)
    print(f"exact baseline: {fn_name}; {len(Q):,} held-out WordNet queries, 100,000 items")
    others = [name for name in methods if name != "exact"]
    for name in others:
        print(f"{name} recall@10 {B._recall(methods[name](Q), truth, X64, Q64):.3f}")
    for r in range(args.rounds):
        best = {name: min(B._timed(f, Q)[1] for _ in range(3)) for name, f in methods.items()}
        ratios = "; ".join(f"{name} {best['exact'] / best[name]:.1f}x" for name in others)
        print(f"round {r}: exact {len(Q) / best['exact']:,.0f} q/s; {ratios}", flush=True)


if __name__ == "__main__":
    main()
