"""k-NN graph on a dask LocalCluster (sksemantic.dask.kneighbors_graph) against one process.

The data is made on the workers, block by block, so that the client never ships it:
``--data random`` draws points around random centres (neighbour structure like real
embeddings have); ``--data wordnet`` (or another corpus of the data folder, see
``benchmarks/_common.py``) resamples the real embeddings with a little noise, so that
``--n`` may exceed the corpus ("real-like" rows at any size). The local run computes
the same array into this process and calls ``SemanticGraphTransformer.fit_transform``.

Reported: wall time of each, the time spent in each kind of task on the cluster per
worker from the task stream (for IVF: the copies of the corpus, the training, the
assignment, the builds, the calibration, the join's two passes and the merges; for
other algorithms: shard fits, (block, shard) searches, block merges), the
recall@k of both graphs against exact search on sampled rows, and how many rows the two
graphs agree on exactly.

Usage (from the repository root)::

    python benchmarks/bench_dask_graph.py --n 20000                 # smoke test, seconds
    python benchmarks/bench_dask_graph.py --n 1000000 --data wordnet  # the real run
    python benchmarks/bench_dask_graph.py --n 1000000 --algorithm brute --skip-local
"""

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import load_embeddings  # noqa: E402


def _random_block(block_id, rows, d, n_centers, seed):
    rng = np.random.default_rng([seed, 0])
    centers = rng.normal(size=(n_centers, d)).astype(np.float32)
    rng = np.random.default_rng([seed, block_id + 1])
    labels = rng.integers(n_centers, size=rows)
    return centers[labels] + 0.35 * rng.normal(size=(rows, d)).astype(np.float32)


def _real_like_block(base, block_id, rows, seed, noise):
    rng = np.random.default_rng([seed, block_id + 1])
    picked = base[rng.integers(len(base), size=rows)]
    scale = noise * float(np.sqrt(np.mean(base.var(axis=0))))
    return (picked + scale * rng.normal(size=picked.shape)).astype(np.float32)


def make_data(args, client):
    import dask
    import dask.array as da

    chunks = [min(args.chunk, args.n - s) for s in range(0, args.n, args.chunk)]
    if args.data == "random":
        d = args.d
        blocks = [da.from_delayed(dask.delayed(_random_block)(b, r, d, 1000, args.seed),
                                  shape=(r, d), dtype=np.float32)
                  for b, r in enumerate(chunks)]
    else:
        base = load_embeddings(args.data, args.data_dir)
        d = base.shape[1]
        base_d = client.scatter(base, broadcast=True)  # on every worker once
        blocks = [da.from_delayed(
            dask.delayed(_real_like_block)(base_d, b, r, args.seed, args.noise),
            shape=(r, d), dtype=np.float32) for b, r in enumerate(chunks)]
    return da.concatenate(blocks, axis=0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="rows (default 1,000,000)")
    parser.add_argument("--d", type=int, default=384, help="features of --data random")
    parser.add_argument("--data", default="random",
                        help="'random' or a corpus of the data folder (wordnet, debian, ...)")
    parser.add_argument("--data-dir", default=None, help="folder of the real embeddings")
    parser.add_argument("--noise", type=float, default=0.1,
                        help="noise added to resampled real rows, relative to their spread")
    parser.add_argument("--n-neighbors", type=int, default=10)
    parser.add_argument("--algorithm", default="auto")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads-per-worker", type=int, default=1)
    parser.add_argument("--n-shards", type=int, default=None, help="default: one per worker")
    parser.add_argument("--chunk", type=int, default=20_000, help="rows per query block")
    parser.add_argument("--skip-local", action="store_true", help="no single-process run")
    parser.add_argument("--recall-rows", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import distributed

    from sksemantic.dask import kneighbors_graph
    from sksemantic.graph import SemanticGraphTransformer
    from sksemantic.metrics import graph_recall

    t = SemanticGraphTransformer(n_neighbors=args.n_neighbors, algorithm=args.algorithm,
                                 n_jobs=args.threads_per_worker, random_state=args.seed,
                                 verbose=1)
    with distributed.LocalCluster(
        n_workers=args.workers, threads_per_worker=args.threads_per_worker,
        processes=True, dashboard_address=None,
    ) as cluster, distributed.Client(cluster) as client:
        X = client.persist(make_data(args, client))
        distributed.wait(X)
        print(f"data: {args.data}, {X.shape[0]} x {X.shape[1]} float32, "
              f"{len(X.chunks[0])} blocks of <= {args.chunk} rows, on {args.workers} workers "
              f"x {args.threads_per_worker} threads")
        with distributed.get_task_stream(client) as stream:
            t0 = time.perf_counter()
            G = kneighbors_graph(X, t, n_shards=args.n_shards)
            dask_s = time.perf_counter() - t0
        per = defaultdict(float)
        count = defaultdict(int)
        spans = {}
        t_start = min((s["start"] for task in stream.data for s in task["startstops"]),
                      default=0.0)
        for task in stream.data:
            for s in task["startstops"]:
                if s["action"] == "compute":
                    key = distributed.utils.key_split(task["key"])
                    lo, hi = spans.get(key, (np.inf, -np.inf))
                    spans[key] = (min(lo, s["start"] - t_start), max(hi, s["stop"] - t_start))
        for task in stream.data:
            prefix = distributed.utils.key_split(task["key"])
            span = sum(s["stop"] - s["start"] for s in task["startstops"]
                       if s["action"] == "compute")
            per[(prefix, task["worker"])] += span
            count[(prefix, task["worker"])] += 1
        X_local = X.compute() if not args.skip_local or args.recall_rows else None

    print(f"\nsksemantic.dask.kneighbors_graph: {dask_s:.1f} s wall, nnz {G.nnz}")
    print(f"{'task':<16} {'worker':<28} {'tasks':>6} {'compute s':>10}")
    for (prefix, worker), secs in sorted(per.items()):
        if secs >= 0.05:
            print(f"{prefix:<16} {worker:<28} {count[(prefix, worker)]:>6} {secs:>10.1f}")
    print("\nwhen each kind of task ran (seconds from the first task's start; the call "
          f"took {dask_s:.1f} s):")
    for key, (lo, hi) in sorted(spans.items(), key=lambda kv: kv[1][0]):
        if hi - lo >= 0.05 or key.lstrip("_") in ("calibrate", "merge"):
            print(f"  {key:<16} {lo:7.1f} {hi:7.1f}")
    rows = dict(n_samples=args.recall_rows, random_state=args.seed)
    print(f"recall@{args.n_neighbors} (dask graph, {args.recall_rows} rows): "
          f"{graph_recall(G, X_local, **rows):.4f}")
    if not args.skip_local:
        t0 = time.perf_counter()
        L = t.set_params(n_jobs=None).fit_transform(X_local)
        local_s = time.perf_counter() - t0
        print(f"\nlocal fit_transform: {local_s:.1f} s wall (n_jobs=None: every core), "
              f"nnz {L.nnz}")
        print(f"recall@{args.n_neighbors} (local graph): {graph_recall(L, X_local, **rows):.4f}")
        same = np.mean([np.array_equal(G.indices[G.indptr[i]:G.indptr[i + 1]],
                                       L.indices[L.indptr[i]:L.indptr[i + 1]])
                        for i in np.linspace(0, len(X_local) - 1, 2000).astype(int)])
        print(f"rows identical in both graphs (2000 sampled): {same:.3f}")


if __name__ == "__main__":
    main()
