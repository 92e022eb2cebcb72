"""How much RQKMeansEncoder's k-means restarts (``n_init``) buy, over three seeds.

For each configuration, fits ``RQKMeansEncoder(n_levels=3)`` with ``n_init`` 1, 3 and
"auto" at ``random_state`` 0, 1 and 2, and prints the relative training error (inertia
over total variance) of each seed, their mean and the mean fit time. Data as in
``bench_rqkmeans.py`` (synthetic blobs, and real MiniLM embeddings from ../shared/data).

Run from the repository root (about 3 minutes on 2 cores)::

    python benchmarks/restarts_rqkmeans.py
"""

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench_rqkmeans import real, synthetic  # noqa: E402

from sksemantic.quantization import RQKMeansEncoder  # noqa: E402

CONFIGS = (("real", 100000, 10), ("synthetic", 100000, 10), ("real", 100000, 32),
           ("real", 10000, 32), ("synthetic", 10000, 32))


def main():
    for data, n, k in CONFIGS:
        X = synthetic(n, 768) if data == "synthetic" else real(n)
        total = float(X.astype(np.float64).var(axis=0).sum())
        for n_init in (1, 3, "auto"):
            errors, times = [], []
            for seed in range(3):
                t = time.perf_counter()
                enc = RQKMeansEncoder(n_levels=3, n_clusters=k, n_init=n_init,
                                      random_state=seed).fit(X)
                times.append(time.perf_counter() - t)
                errors.append(enc.inertia_ / len(X) / total)
            print(f"{data:9s} {n:>6d} x 3x{k:<3d} n_init={n_init!s:4s} rel error "
                  f"{np.round(errors, 5).tolist()} mean {np.mean(errors):.5f} "
                  f"fit {np.mean(times):.2f} s", flush=True)


if __name__ == "__main__":
    main()
