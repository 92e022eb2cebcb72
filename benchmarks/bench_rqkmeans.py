"""Residual k-means side by side: sksemantic vs semantic-id 0.2.5 vs scikit-learn KMeans.

Fits and encodes embeddings with ``n_levels`` x ``n_clusters`` residual k-means and
prints, per configuration (rows x codewords), data set and method: fit and encode wall
time, peak memory above the loaded data during fit and encode, relative reconstruction MSE (MSE / total
variance: 1.0 is "predict the mean"), the fraction of rows whose code is unique, and
sksemantic's fit speed-up and MSE ratio against each peer row of the same data.

Methods (each runs in its own process, with a timeout):

- ``sksemantic``: :class:`sksemantic.quantization.RQKMeansEncoder` (defaults).
- ``sksemantic-n_init1``: the same with ``n_init=1`` (one seeding per level; only run
  where ``n_init="auto"`` tries more, i.e. below 128 codewords).
- ``sksemantic-no_pca``: the same with ``pca_components=None`` (no projected start;
  only run where ``"auto"`` projects, i.e. few codewords on wide data).
- ``sksemantic-balanced``: the same with ``balanced=True``.
- ``sklearn``: one ``sklearn.cluster.KMeans(n_init=1)`` per level on the residuals
  (scikit-learn's defaults otherwise: k-means++ on every row, Lloyd to convergence),
  encoding with ``predict`` per level.
- ``semantic-id``: ``semantic_id.RQKMeans`` (its defaults: per level scikit-learn
  ``KMeans(n_init=10, max_iter=100)``), run with the peers' Python
  (``benchmarks/_common.py`` finds it; ``--peer-python`` or ``$SKSEMANTIC_PEERS_PYTHON``
  overrides).

Data: ``synthetic`` (clustered Gaussian, 1,000 centres, float32) and ``real`` (the first
``n`` rows of ``wordnet_emb.npy`` in ``$SKSEMANTIC_DATA``, MiniLM, 384-d, as float32).

Usage (from the repository root)::

    python benchmarks/bench_rqkmeans.py                      # the two configurations below
    python benchmarks/bench_rqkmeans.py --configs 10000x256 --data synthetic

``--configs`` takes comma-separated ``ROWSxCODEWORDS`` items. The default runs the
headline 100,000 x 256 (where semantic-id does not finish within the timeout, so its
speed-up is a lower bound) and 10,000 x 32 (where semantic-id finishes in a minute or
two, so the MSE is compared head to head).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _memory import peak_rss_mb  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from sksemantic.cluster._kmeans import auto_pca_components  # noqa: E402

METHODS = ("sksemantic", "sksemantic-n_init1", "sksemantic-no_pca", "sksemantic-balanced",
           "sklearn", "semantic-id")
# Parameters of RQKMeansEncoder per sksemantic method (random_state: the run's seed).
SKSEMANTIC = {
    "sksemantic": {},
    "sksemantic-n_init1": {"n_init": 1},
    "sksemantic-no_pca": {"pca_components": None},
    "sksemantic-balanced": {"balanced": True},
}


# --------------------------------------------------------------------------- data
def synthetic(n, dim, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((1000, dim), dtype=np.float32)
    X = centers[rng.integers(0, 1000, n)]
    X += 2.0 * rng.standard_normal((n, dim), dtype=np.float32)
    return X


def real(n):
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    from _common import data_dir

    path = data_dir() / "wordnet_emb.npy"
    return np.ascontiguousarray(np.load(path, mmap_mode="r")[:n], dtype=np.float32)


# --------------------------------------------------------------------------- children
def _peak_mb():
    return peak_rss_mb()  # VmHWM: ru_maxrss counts the parent's memory too


def _run_sksemantic(X, levels, clusters, seed, params):
    sys.path.insert(0, ROOT)
    from sksemantic.quantization import RQKMeansEncoder

    enc = RQKMeansEncoder(n_levels=levels, n_clusters=clusters, random_state=seed, **params)
    t0 = time.perf_counter()
    enc.fit(X)
    t1 = time.perf_counter()
    codes = enc.transform(X)
    t2 = time.perf_counter()
    peak = _peak_mb()  # fit and encode only: the MSE below needs float64 copies
    return t1 - t0, t2 - t1, peak, codes, enc.inverse_transform(codes)


def _run_sklearn(X, levels, clusters, seed):
    from sklearn.cluster import KMeans

    t0 = time.perf_counter()
    residual = X.copy()
    models = []
    for level in range(levels):
        km = KMeans(clusters, n_init=1, random_state=1000 * seed + level).fit(residual)
        residual -= km.cluster_centers_[km.labels_].astype(X.dtype)
        models.append(km)
    t1 = time.perf_counter()
    residual = X.copy()
    codes = np.empty((len(X), levels), dtype=np.int64)
    for level, km in enumerate(models):
        codes[:, level] = km.predict(residual)
        residual -= km.cluster_centers_[codes[:, level]].astype(X.dtype)
    t2 = time.perf_counter()
    peak = _peak_mb()
    return t1 - t0, t2 - t1, peak, codes, X - residual


def _run_semantic_id(X, levels, clusters, seed):
    from semantic_id import RQKMeans

    model = RQKMeans(n_levels=levels, n_clusters=clusters, random_state=seed)
    t0 = time.perf_counter()
    model.fit(X)
    t1 = time.perf_counter()
    codes = np.asarray(model.encode(X))
    t2 = time.perf_counter()
    peak = _peak_mb()
    return t1 - t0, t2 - t1, peak, codes, np.asarray(model.decode(codes), dtype=np.float64)


def child(method, path, levels, clusters, seed):
    X = np.load(path)
    base = _peak_mb()
    if method.startswith("sksemantic"):
        fit_s, enc_s, peak, codes, recon = _run_sksemantic(
            X, levels, clusters, seed, SKSEMANTIC[method])
    elif method == "sklearn":
        fit_s, enc_s, peak, codes, recon = _run_sklearn(X, levels, clusters, seed)
    else:
        fit_s, enc_s, peak, codes, recon = _run_semantic_id(X, levels, clusters, seed)
    X64 = X.astype(np.float64)
    mse = float(np.mean((X64 - recon) ** 2))
    total = float(np.mean(X64.var(axis=0)))
    unique = len(np.unique(codes, axis=0)) / len(X)
    sizes = np.bincount(codes[:, 0], minlength=clusters)
    print(json.dumps({
        "fit_s": fit_s, "encode_s": enc_s, "peak_mb": peak - base,
        "rel_mse": mse / total, "unique": unique,
        "level0_size_cv": float(sizes.std() / sizes.mean()),
    }))


# --------------------------------------------------------------------------- driver
def _peer_python(arg):
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    from _common import peers_python

    return peers_python(arg)


def _configs(text):
    out = []
    for item in text.split(","):
        rows, clusters = item.lower().split("x")
        out.append((int(rows), int(clusters)))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", default="100000x256,10000x32",
                   help="comma-separated ROWSxCODEWORDS configurations")
    p.add_argument("--dim", type=int, default=768, help="features of the synthetic data")
    p.add_argument("--levels", type=int, default=3)
    p.add_argument("--data", default="synthetic,real")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per method run")
    p.add_argument("--peer-python", default=None)
    p.add_argument("--seeds", default="0",
                   help="comma-separated random_state values; every method runs once per "
                        "seed and the table gives the mean (min-max) over them")
    p.add_argument("--clusters", type=int, default=256, help=argparse.SUPPRESS)
    p.add_argument("--child", nargs=2, metavar=("METHOD", "PATH"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.levels, args.clusters, int(args.seeds))
        return

    peer = _peer_python(args.peer_python)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, clusters in _configs(args.configs):
            for name in args.data.split(","):
                X = synthetic(n, args.dim) if name == "synthetic" else real(n)
                path = os.path.join(tmp, f"{name}.npy")
                np.save(path, X)
                shape = f"{X.shape[0]}x{X.shape[1]}"
                del X
                for method in args.methods.split(","):
                    if method == "sksemantic-n_init1" and clusters >= 128:
                        continue  # n_init="auto" already uses one seeding there
                    if method == "sksemantic-no_pca" and auto_pca_components(
                            clusters, int(shape.split("x")[1])) is None:
                        continue  # pca_components="auto" does not project there
                    key = (name, shape, clusters, method)
                    rows.append((*key, _run_seeds(args, key, peer, path, clusters)))

    ours = {r[:3]: r[4] for r in rows if r[3] == "sksemantic" and isinstance(r[4], list)}
    seeds = args.seeds.split(",")
    print()
    print(f"{args.levels} levels; random_state {', '.join(seeds)}"
          + (": mean (min-max) over the seeds" if len(seeds) > 1 else "")
          + "; relative MSE = MSE / total variance; 'x ours' = peer fit time / sksemantic "
          "fit time (a lower bound when the peer did not finish); 'MSE / ours' = peer rel "
          "MSE / sksemantic rel MSE (> 1: ours is lower), both from the means")
    head = ("data", "n x d", "codewords", "method", "fit s", "encode s", "peak MB", "rel MSE",
            "unique", "L0 size CV", "x ours", "MSE / ours")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for name, shape, clusters, method, res in rows:
        base = ours.get((name, shape, clusters))
        if isinstance(res, str):
            bound = ""
            if base and res.startswith("did not finish"):
                bound = f">= {args.timeout / _mean(base, 'fit_s'):.0f}"
            print(f"| {name} | {shape} | {clusters} | {method} | {res} | | | | | | {bound} | |")
            continue
        speed = ratio = ""
        if base and not method.startswith("sksemantic"):
            speed = f"{_mean(res, 'fit_s') / _mean(base, 'fit_s'):.1f}"
            ratio = f"{_mean(res, 'rel_mse') / _mean(base, 'rel_mse'):.5f}"
        print(f"| {name} | {shape} | {clusters} | {method} | {_cell(res, 'fit_s', 1)} | "
              f"{_cell(res, 'encode_s', 1)} | {_mean(res, 'peak_mb'):.0f} | "
              f"{_cell(res, 'rel_mse', 5)} | {_mean(res, 'unique'):.3f} | "
              f"{_mean(res, 'level0_size_cv'):.2f} | {speed} | {ratio} |")


def _run_seeds(args, key, peer, path, clusters):
    """One child process per seed; a list of result dicts, or the first failure's text."""
    python = peer if key[3] == "semantic-id" else sys.executable
    if python is None:
        return "peers venv not found"
    results = []
    for seed in args.seeds.split(","):
        cmd = [python, os.path.abspath(__file__), "--child", key[3], path,
               "--levels", str(args.levels), "--clusters", str(clusters), "--seeds", seed]
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
        except subprocess.TimeoutExpired:
            print(f"{key} seed {seed}: did not finish in {args.timeout:.0f} s", flush=True)
            return f"did not finish in {args.timeout:.0f} s"
        if out.returncode != 0:
            return "failed: " + out.stderr.strip().splitlines()[-1]
        res = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{key} seed {seed}: {res}", flush=True)
        results.append(res)
    return results


def _mean(results, field):
    return float(np.mean([r[field] for r in results]))


def _cell(results, field, digits):
    """The mean, with the range when there are several seeds."""
    values = [r[field] for r in results]
    text = f"{np.mean(values):.{digits}f}"
    if len(values) > 1:
        text += f" ({min(values):.{digits}f}-{max(values):.{digits}f})"
    return text

if __name__ == "__main__":
    main()
