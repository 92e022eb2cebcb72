"""How many corpus queries the fit-time recall calibration needs.

For each seed, ``SemanticSearch(random_state=seed)`` is fitted with the calibration
sample size and margin given; the recall@10 of the chosen ``n_probe`` is then measured
on 10,000 held-out corpus items (the benchmark's queries) and compared with the
estimate. Prints one line per seed and a summary: the worst measured recall, the mean,
the largest overestimate and the mean estimated cost.

Usage::

    python benchmarks/investigations/calibration_sample_size.py --case wordnet-28k \
        --n-calibration 300,1000,2000 --z 1.645 --seeds 10
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parents[1]))
from _common import data_dir  # noqa: E402
from bench_search import load_case  # noqa: E402

import sksemantic.neighbors._calibrate as C  # noqa: E402
import sksemantic.neighbors._estimator as E  # noqa: E402
from sksemantic.neighbors._calibrate import exact_answers  # noqa: E402
from sksemantic.search import SemanticSearch  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=None)
    p.add_argument("--case", default="wordnet-28k")
    p.add_argument("--n-calibration", default="300,2000")
    p.add_argument("--z", type=float, default=C.Z_MARGIN)
    p.add_argument("--seeds", type=int, default=10)
    args = p.parse_args()
    X, Q = load_case(args.case, data_dir(args.data))
    C.Z_MARGIN = args.z
    for n_cal in (int(v) for v in args.n_calibration.split(",")):
        E.N_CALIBRATION = n_cal  # the estimator reads its own copy of the constant
        res = []
        for seed in range(args.seeds):
            t = time.perf_counter()
            est = SemanticSearch(random_state=seed).fit(X)
            fit_s = time.perf_counter() - t
            cal, index = est.calibration_, est.index_
            if cal.exact:
                measured = 1.0
            else:
                s, i = exact_answers(index, 10, Q=Q)
                measured = index.recall_curve(10, s, i, [cal.value], Q=Q).mean()
            res.append((cal.recall, measured, cal.cost))
            print(f"  seed {seed}: {cal.describe()}; measured {measured:.4f}; fit {fit_s:.1f} s",
                  flush=True)
        R = np.array(res)
        print(f"{args.case} n_calibration={n_cal} z={args.z}: worst measured {R[:, 1].min():.4f}, "
              f"mean {R[:, 1].mean():.4f}, largest overestimate {np.max(R[:, 0] - R[:, 1]):.4f}, "
              f"mean cost {R[:, 2].mean():.3f}", flush=True)


if __name__ == "__main__":
    main()
