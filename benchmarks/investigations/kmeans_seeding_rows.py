"""Why RQ k-means's first level ended above scikit-learn's on many-blob data.

Level 1 of ``blobs_many`` (100,000 x 768, 256 codewords from 2,048 blobs; the family
benchmark's data) fitted several ways from the same data: our defaults, k-means++ on
every row, no over-relaxation, ``tol=0``, scikit-learn's Lloyd from our seeds, our Lloyd
from scikit-learn's ``kmeans_plusplus``, and scikit-learn itself; then our fit with
k-means++ on ``--sizes`` rows. Prints inertia, passes and seconds per variant.

Usage::

    python benchmarks/investigations/kmeans_seeding_rows.py --shape blobs_many \
        --sizes 10240,32768,100000 --seeds 0,1
"""

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parents[1]))
from bench_kmeans_family import make_data  # noqa: E402
from sklearn.cluster import KMeans, kmeans_plusplus  # noqa: E402
from sklearn.utils import check_random_state  # noqa: E402

from sksemantic.cluster._kmeans import _kmeans, init_centers  # noqa: E402
from sksemantic.cluster._lloyd import LloydOptions  # noqa: E402

K = 256
OPTIONS = LloydOptions(max_iter=100, tol=1e-5, split_small=0.05)  # the encoder's


def ours(X, label, options=OPTIONS, init="k-means++", init_size=None, seed=0):
    t = time.perf_counter()
    r = _kmeans(X, K, options, rng=check_random_state(seed), init=init, init_size=init_size)
    print(f"{label:45s} inertia {r.inertia:.6e} passes {r.n_iter:3d} "
          f"{time.perf_counter() - t:6.1f} s", flush=True)


def sk(X, label, init="k-means++", seed=0):
    t = time.perf_counter()
    km = KMeans(K, n_init=1, max_iter=100, random_state=seed, init=init).fit(X)
    print(f"{label:45s} inertia {km.inertia_:.6e} passes {km.n_iter_:3d} "
          f"{time.perf_counter() - t:6.1f} s", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shape", default="blobs_many")
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--sizes", default="10240,32768,100000")
    p.add_argument("--seeds", default="0,1")
    args = p.parse_args()
    X = make_data(args.shape, args.n, 768, K, 0)
    ours(X, "ours (default seeding rows)")
    ours(X, "ours, k-means++ on every row", init_size=len(X))
    ours(X, "ours, no over-relaxation", options=OPTIONS.replace(step_growth=1.0))
    ours(X, "ours, tol=0", options=OPTIONS.replace(tol=0.0))
    sk(X, "scikit-learn from our seeding",
       init=init_centers(X, K, init="k-means++", random_state=check_random_state(0)))
    ours(X, "ours from scikit-learn's kmeans_plusplus", init=kmeans_plusplus(X, K, random_state=0)[0])
    sk(X, "scikit-learn")
    for size in (int(v) for v in args.sizes.split(",")):
        for seed in (int(v) for v in args.seeds.split(",")):
            ours(X, f"ours, seeding rows {size}, seed {seed}", init_size=size, seed=seed)


if __name__ == "__main__":
    main()
