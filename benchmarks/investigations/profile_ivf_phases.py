"""Where the time of an IVF search batch goes: probe, pass 1, pass 2, merges.

Wraps the phases of :class:`sksemantic.neighbors.IVFIndex`'s batch search with wall-clock
timers and reports, for batches of 1,000 and 10,000 held-out WordNet queries against a
100,000-item corpus (``../shared/data``, as in ``bench_search.py``), the best of five
runs. Phases that run threads are timed as wall time of the whole phase; merges that
happen inside pass 2 are counted in both.

Usage (from the repository root)::

    python benchmarks/profile_ivf_phases.py [--n-probe N] [--n-jobs J]
"""

import argparse
import collections
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_search import load_corpora  # noqa: E402

import sksemantic.neighbors._ivf as ivf  # noqa: E402
from sksemantic.search import SemanticSearch  # noqa: E402

TIMES = collections.Counter()


def _timed(cls, name, label):
    fn = getattr(cls, name)

    def wrapper(self, *args, **kwargs):
        start = time.perf_counter()
        out = fn(self, *args, **kwargs)
        TIMES[label()] += time.perf_counter() - start
        return out

    setattr(cls, name, wrapper)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--n-probe", type=int, default=None)
    parser.add_argument("--n-jobs", type=int, default=None)
    args = parser.parse_args()
    calls = {"groups": 0}

    def group_label():
        calls["groups"] += 1  # _run_groups runs pass 1, then pass 2, per chunk
        return "pass 1" if calls["groups"] % 2 else "pass 2 (list products)"

    _timed(ivf.IVFIndex, "_probe", lambda: "probe")
    _timed(ivf.IVFIndex, "_run_groups", group_label)
    _timed(ivf._CandidateBuffer, "flush", lambda: "merges")
    _timed(ivf.IVFIndex, "_search_chunk", lambda: "whole chunks")
    rng = np.random.default_rng(0)
    (_, X, query_sets), = load_corpora(args.data, 100_000, 10_000, rng, quick=True)
    Q = query_sets[0][1]
    est = SemanticSearch(algorithm="ivf", n_probe=args.n_probe, n_jobs=args.n_jobs,
                         random_state=0).fit(X)
    for n_q in (1000, 10_000):
        est.kneighbors(Q[:n_q], 10)  # warm-up
        best = None
        for _ in range(5):
            TIMES.clear()
            calls["groups"] = 0
            start = time.perf_counter()
            est.kneighbors(Q[:n_q], 10, return_distance=False)
            elapsed = time.perf_counter() - start
            if best is None or elapsed < best[0]:
                best = (elapsed, dict(TIMES))
        elapsed, phases = best
        print(f"{n_q} queries: {n_q / elapsed:,.0f} q/s, {1e3 * elapsed:.0f} ms")
        for name, seconds in phases.items():
            print(f"  {name:24s} {1e3 * seconds:7.1f} ms")


if __name__ == "__main__":
    main()
