"""IVFRQIndex's recall and speed over a grid of ``n_probe`` and ``n_rescore``.

Builds the disk benchmark's real-like vectors in memory (real MiniLM embeddings from
``$SKSEMANTIC_DATA`` or ``--data``, tiled with Gaussian noise, normalised), fits
``IVFRQIndex`` once, and prints one JSON line per setting: recall@10 of 1,000 held-out
queries against exact search (tie-aware), queries per second for the batch, and its
time as a share of the library's exact search (``BruteIndex``, timed on the same data
first) beside the share the recall contract's cost model predicts.

``--sources F`` tiles only a fraction ``F`` of the real rows: 0.1 at 1,000,000 rows
gives each real row the 70 noisy copies it has in the 10,000,000-row benchmark, and
``--n-lists 632`` its points per list (1,580), at a tenth of the build time.

Usage (from the repository root)::

    python benchmarks/investigations/ivf_rq_grid.py --n 1000000
    python benchmarks/investigations/ivf_rq_grid.py --n 1000000 --sources 0.1 --n-lists 632 \\
        --probes 16,64,632 --rescore 1024,2048,4096
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parents[1]))
from bench_disk_index import _normalise, base_and_queries, recall_at_k  # noqa: E402

from sksemantic.neighbors import BruteIndex, IVFRQIndex  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--data", default=None, help="folder of the real embeddings")
    p.add_argument("--sources", type=float, default=1.0, help="share of real rows tiled")
    p.add_argument("--noise", type=float, default=0.3)
    p.add_argument("--n-lists", type=int, default=None)
    p.add_argument("--code-size", type=int, default=32)
    p.add_argument("--probes", default="4,8,16,32,64,128,256,512,0",
                   help="n_probe values (0: every list)")
    p.add_argument("--rescore", default="128,320,1000", help="n_rescore values")
    args = p.parse_args(argv)

    base, Q, _ = base_and_queries(args.data)
    rng = np.random.default_rng(5)
    if args.sources < 1:
        base = base[rng.choice(len(base), int(len(base) * args.sources), replace=False)]
    X = base[rng.integers(len(base), size=args.n)]
    X += rng.standard_normal(X.shape, dtype=np.float32) * np.float32(args.noise / np.sqrt(384))
    X = _normalise(X)

    exact = BruteIndex("cosine").fit(X)
    truth, _, _ = exact.exact_query(Q, 10)
    exact.query(Q[:50], 10)
    t = time.perf_counter()
    exact.query(Q, 10)
    t_exact = time.perf_counter() - t
    print(json.dumps({"exact_qps": round(len(Q) / t_exact)}), flush=True)
    del exact

    t = time.perf_counter()
    index = IVFRQIndex("cosine", n_lists=args.n_lists, code_size=args.code_size,
                       random_state=0).fit(X)
    print(json.dumps({"build_s": round(time.perf_counter() - t, 1),
                      "n_lists": int(index.n_lists_)}), flush=True)
    probes = [int(v) or index.n_lists_ for v in args.probes.split(",")]
    probes = sorted({v for v in probes if v <= index.n_lists_})
    for n_rescore in (int(v) for v in args.rescore.split(",")):
        index.n_rescore = n_rescore
        model = index.relative_cost(probes, 10, Q=Q)  # the contract's estimate
        for value, cost in zip(probes, model, strict=True):
            index.query(Q[:50], 10, knob=value)
            t = time.perf_counter()
            s, _, _ = index.query(Q, 10, knob=value)
            dt = time.perf_counter() - t
            print(json.dumps({"n_probe": value, "n_rescore": n_rescore,
                              "recall@10": round(recall_at_k(s, truth, 10), 4),
                              "qps": round(len(Q) / dt), "cost": round(dt / t_exact, 3),
                              "model_cost": round(float(cost), 3)}), flush=True)


if __name__ == "__main__":
    main()
