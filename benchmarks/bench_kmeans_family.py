"""Residual k-means error against scikit-learn (and faiss) over a family of data shapes.

For every data shape and seed, three greedy residual quantisers of ``--levels`` levels
of ``--clusters`` codewords are fitted on the same rows:

- ``RQKMeansEncoder`` with its defaults (and, with ``--variants``, other settings);
- one scikit-learn ``KMeans(n_init=1, max_iter=--max-iter)`` per level, on the residuals
  of the levels before (the reference);
- one ``faiss.Kmeans`` per level when faiss is importable.

Each cell reports the training error (sum of squared residuals after the last level) of
every method relative to scikit-learn's, and fit times as ratios to scikit-learn's fit,
measured in the same run (speed is only ever compared within one run), and, with
faiss, each setting's fit time over faiss's (both always in the same run, back to back,
also with ``--reference``). The table is printed as markdown.

Shapes: Gaussian blobs with many more (``blobs_many``, 8 centres per codeword) and many
fewer (``blobs_few``, one per 8 codewords) centres than codewords, ``anisotropic``
blobs (a random linear map with singular values over two decades), ``student_t``
blobs (heavy-tailed noise, 3 degrees of freedom), ``duplicated`` rows (a tenth of the
rows, each repeated about ten times), ``scales`` (features scaled over six decades),
and the real sets ``wordnet`` / ``debian`` when ``SKSEMANTIC_DATA`` names a folder
holding ``wordnet_emb.npy`` / ``debian_emb.npy`` (float16 arrays).

Usage (small configurations run in a minute or two; the full size is for a quiet machine)::

    python benchmarks/bench_kmeans_family.py --n 5000 --d 64 --clusters 32 --shapes blobs_many
    python benchmarks/bench_kmeans_family.py --n 100000 --d 768 --clusters 256 --seeds 0,1,2
"""

import argparse
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from sksemantic.quantization import RQKMeansEncoder  # noqa: E402

SHAPES = ("blobs_many", "blobs_few", "anisotropic", "student_t", "duplicated", "scales")
REAL = ("wordnet", "debian")

VARIANTS = {
    "default": {},
    "greedy": {"refine_iter": 0},
    "n_init1": {"n_init": 1},
    "torch": {"backend": "torch"},
    "balanced": {"balanced": True},
    # faiss's sample (256 rows per codeword at 256), no joint refinement, a looser stop.
    "fast": {"max_samples": 65536, "refine_iter": 0, "tol": 1e-4},
}


def _blobs(rng, n, d, n_centers, noise=0.8, t_df=None):
    centers = rng.standard_normal((n_centers, d), dtype=np.float32)
    if t_df is None:
        eps = rng.standard_normal((n, d), dtype=np.float32)
    else:
        eps = rng.standard_t(t_df, size=(n, d)).astype(np.float32)
    return centers[rng.integers(0, n_centers, n)] + noise * eps


def make_data(shape, n, d, k, seed):
    """``n x d`` float32 rows of the named shape (``k``: codewords per level)."""
    rng = np.random.default_rng(seed)
    if shape == "blobs_many":
        return _blobs(rng, n, d, 8 * k)
    if shape == "blobs_few":
        return _blobs(rng, n, d, max(2, k // 8))
    if shape == "anisotropic":
        q, _ = np.linalg.qr(rng.standard_normal((d, d)))
        mix = (q * np.geomspace(1.0, 0.01, d)).astype(np.float32)
        return _blobs(rng, n, d, 2 * k) @ mix
    if shape == "student_t":
        return _blobs(rng, n, d, 2 * k, t_df=3)
    if shape == "duplicated":
        base = _blobs(rng, max(k, n // 10), d, 2 * k)
        return base[rng.integers(0, len(base), n)]
    if shape == "scales":
        return _blobs(rng, n, d, 2 * k) * np.geomspace(1e-3, 1e3, d).astype(np.float32)
    if shape in REAL:
        folder = os.environ.get("SKSEMANTIC_DATA")
        path = os.path.join(folder or "", f"{shape}_emb.npy")
        if not folder or not os.path.exists(path):
            return None
        X = np.load(path, mmap_mode="r")
        rows = np.sort(rng.choice(len(X), min(n, len(X)), replace=False))
        return np.ascontiguousarray(X[rows], dtype=np.float32)
    raise ValueError(f"unknown shape {shape!r}")


def _sum_squares(R):
    return float(np.einsum("ij,ij->i", R, R, dtype=np.float64).sum())


def fit_sklearn(X, levels, k, seed, max_iter):
    from sklearn.cluster import KMeans

    R = X.copy()
    t0 = time.perf_counter()
    for level in range(levels):
        km = KMeans(k, n_init=1, max_iter=max_iter, random_state=seed + level).fit(R)
        R -= km.cluster_centers_[km.labels_].astype(R.dtype)
    return _sum_squares(R), time.perf_counter() - t0


def fit_faiss(X, levels, k, seed, niter):
    try:
        import faiss
    except ImportError:
        return None, None
    R = np.ascontiguousarray(X.copy())
    t0 = time.perf_counter()
    for level in range(levels):
        km = faiss.Kmeans(R.shape[1], k, niter=niter, seed=seed + level, verbose=False)
        km.train(R)
        _, labels = km.index.search(R, 1)
        R -= km.centroids[labels[:, 0]]
    return _sum_squares(R), time.perf_counter() - t0


def fit_ours(X, levels, k, seed, params):
    enc = RQKMeansEncoder(n_levels=levels, n_clusters=k, random_state=seed, **params)
    t0 = time.perf_counter()
    enc.fit(X)
    elapsed = time.perf_counter() - t0
    err = X - enc.inverse_transform(enc.transform(X))
    return _sum_squares(err), elapsed


def read_reference(path):
    """scikit-learn's (error, seconds) per (shape, "n x d", seed) from the markdown
    tables of ``path`` whose header has those columns (the last row of a key wins)."""
    found, columns = {}, None
    with open(path, encoding="utf-8") as f:
        for line in f:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not line.startswith("|"):
                columns = None
            elif {"shape", "n x d", "seed", "sklearn err", "sklearn s"} <= set(cells):
                columns = {name: i for i, name in enumerate(cells)}
            elif columns is not None and not set(line.strip()) <= set("|-: "):
                key = tuple(cells[columns[c]] for c in ("shape", "n x d", "seed"))
                found[key] = (float(cells[columns["sklearn err"]]),
                              float(cells[columns["sklearn s"]]))
    return found


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=20_000, help="rows per data set")
    p.add_argument("--d", type=int, default=256, help="features of the synthetic shapes")
    p.add_argument("--levels", type=int, default=3)
    p.add_argument("--clusters", type=int, default=256, help="codewords per level")
    p.add_argument("--seeds", default="0", help="comma-separated seeds")
    p.add_argument("--shapes", default=",".join(SHAPES + REAL),
                   help="comma-separated shapes (real ones are skipped without data)")
    p.add_argument("--variants", default="default,greedy",
                   help=f"RQKMeansEncoder settings among {sorted(VARIANTS)}")
    p.add_argument("--max-iter", type=int, default=100, help="scikit-learn's max_iter")
    p.add_argument("--faiss-niter", type=int, default=25, help="faiss iterations (its default)")
    p.add_argument("--no-faiss", action="store_true")
    p.add_argument("--reference", metavar="FILE.md",
                   help="take scikit-learn's errors and times from the tables of this "
                        "markdown file (rows of an earlier run of this script with the same "
                        "--n/--d/--clusters) instead of fitting it; its fits are "
                        "deterministic at a seed, but the time ratios then compare runs "
                        "made at different times")
    args = p.parse_args(argv)
    reference = read_reference(args.reference) if args.reference else None

    seeds = [int(s) for s in args.seeds.split(",")]
    variants = args.variants.split(",")
    header = ["shape", "n x d", "seed", "sklearn err", "sklearn s"]
    header += [f"{v} / sk err" for v in variants]
    header += ([] if args.no_faiss else ["faiss / sk err"])
    header += [f"{v} / sk time" for v in variants]
    header += ([] if args.no_faiss else ["faiss / sk time"])
    header += ([] if args.no_faiss else [f"{v} / faiss time" for v in variants])
    rows = []
    print(f"levels={args.levels} codewords={args.clusters} sklearn max_iter={args.max_iter}",
          file=sys.stderr)
    for shape in args.shapes.split(","):
        for seed in seeds:
            X = make_data(shape, args.n, args.d, args.clusters, seed)
            if X is None:
                print(f"{shape}: no data (set SKSEMANTIC_DATA), skipped", file=sys.stderr)
                break
            key = (shape, f"{X.shape[0]}x{X.shape[1]}", str(seed))
            if reference is not None:
                if key not in reference:
                    print(f"{key}: not in {args.reference}, skipped", file=sys.stderr)
                    continue
                sk_err, sk_time = reference[key]
            else:
                sk_err, sk_time = fit_sklearn(X, args.levels, args.clusters, seed,
                                              args.max_iter)
            errs, times, seconds = [], [], []
            for v in variants:
                e, t = fit_ours(X, args.levels, args.clusters, seed, VARIANTS[v])
                errs.append(e / sk_err)
                times.append(t / sk_time)
                seconds.append(t)
            if not args.no_faiss:
                fe, ft = fit_faiss(X, args.levels, args.clusters, seed, args.faiss_niter)
                errs.append(None if fe is None else fe / sk_err)
                times.append(None if ft is None else ft / sk_time)
                # Against faiss directly: both timed in this run, back to back.
                times += [None if ft is None else t / ft for t in seconds]
            cells = [shape, f"{X.shape[0]}x{X.shape[1]}", str(seed), f"{sk_err:.6g}",
                     f"{sk_time:.1f}"]
            cells += ["-" if r is None else f"{r:.4f}" for r in errs]
            cells += ["-" if r is None else f"{r:.2f}" for r in times]
            rows.append(cells)
            print(" | ".join(cells), file=sys.stderr, flush=True)
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for cells in rows:
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
