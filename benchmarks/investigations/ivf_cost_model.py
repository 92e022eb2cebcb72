"""IVF search time as a share of exact search, to set IVF's cost model.

``IVFIndex.relative_cost`` predicts the time of a search at each ``n_probe`` as a share
of exact search (``BruteIndex``): ``SCAN_COST`` times the share of stored points the
probed lists hold, plus ``FIXED_COST`` and the probe. This script measures that share
on held-out WordNet queries (``--data`` or ``$SKSEMANTIC_DATA``) for two corpus sizes,
two list counts (2 and 4 times sqrt(n)), 1,000- and 10,000-query batches and three
probe depths, each the median of three rounds of exact and IVF back to back, and prints
the measured share, the model's, and the per-point cost that the measurement implies.

Usage (from the repository root; a few minutes on 2 cores, on a quiet machine)::

    python benchmarks/investigations/ivf_cost_model.py
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import data_dir  # noqa: E402

from sksemantic.neighbors import BruteIndex, IVFIndex  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=None)
    parser.add_argument("--sizes", default="28000,100000")
    args = parser.parse_args()
    W = np.load(data_dir(args.data) / "wordnet_emb.npy").astype(np.float32)
    perm = np.random.default_rng(0).permutation(len(W))
    print("| n | lists | batch | n_probe | share scanned | measured | model | implied scan cost |")
    print("|---|---|---|---|---|---|---|---|")
    for n in (int(s) for s in args.sizes.split(",")):
        X, Q = W[perm[:n]], W[perm[n : n + 10_000]]
        exact = BruteIndex().fit(X)
        for factor in (2, 4):
            n_lists = int(round(factor * np.sqrt(n)))
            ivf = IVFIndex(n_lists=n_lists, random_state=0).fit(X)
            for batch in (1000, 10_000):
                q = Q[:batch]
                for n_probe in (max(2, n_lists // 40), n_lists // 16, n_lists // 6):
                    ratios = []
                    for _ in range(3):
                        t = time.perf_counter()
                        exact.query(q, 10)
                        t_exact = time.perf_counter() - t
                        t = time.perf_counter()
                        ivf.query(q, 10, knob=n_probe)
                        ratios.append((time.perf_counter() - t) / t_exact)
                    measured = float(np.median(ratios))
                    model = float(ivf.relative_cost([n_probe], 10, Q=q[:300])[0])
                    share = (model - ivf.FIXED_COST - n_lists / n) / ivf.SCAN_COST
                    implied = (measured - n_lists / n) / share
                    print(f"| {n} | {n_lists} | {batch} | {n_probe} | {share:.3f} | "
                          f"{measured:.3f} | {model:.3f} | {implied:.2f} |", flush=True)


if __name__ == "__main__":
    main()
