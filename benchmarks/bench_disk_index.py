"""Disk-built IVF and compressed IVF (``ivf_rq``) at tens of millions of vectors.

Generates ``--n`` x 384 real-like vectors on disk, builds both indexes from the memory
map with ``storage`` (the vectors stay on disk), and reports per index:

- build time, peak resident memory (``VmHWM``: it counts the mapped file pages the
  kernel keeps resident too) and peak anonymous memory (``RssAnon`` sampled every
  50 ms: what the build itself holds), both in MiB and as a share of the data;
- bytes per vector held in memory (:meth:`IVFIndex.resident_bytes_per_vector`);
- the ``n_probe`` chosen by the recall contract (``calibrate_index``, target recall@10
  0.95, on 300 held-out queries answered exactly), and at it recall@10 on 1,000 other
  held-out queries against exact top-k over all ``--n`` vectors (tie-aware), and
  queries per second for the batch of 1,000. When the contract prefers exact search
  (its cost model finds no cheaper probe reaching the target), the index is measured
  at the smallest probe of a grid whose recall reaches the target on the 300;
- exact top-k's queries per second on the first ``--subset`` vectors, held in
  memory: torch products over query chunks with ``torch.topk``, and the library's own
  :class:`~sksemantic.neighbors.BruteIndex` (the faster of the two is the baseline):
  the speed an in-memory exact search reaches where it can run at all.

Data: real MiniLM embeddings from the data folder (``--data`` or ``$SKSEMANTIC_DATA``;
WordNet and Debian, 142,659 rows), normalised; 1,300 of them are held out as queries,
the others tiled to ``--n`` rows with Gaussian noise of relative norm ``--noise`` and
normalised again, written ``--chunk`` rows at a time (N x 384 is never in memory).
Ground truth is computed the same way, a chunk of the file at a time.

Usage (from the repository root; 10,000,000 vectors need about 16 GB in ``--out``)::

    python benchmarks/bench_disk_index.py --n 10000000 --out /big/disk/dir
    python benchmarks/bench_disk_index.py --n 50000 --out /tmp/bench  # a smoke test
"""

import argparse
import json
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import data_dir, exact_topk  # noqa: E402

from sksemantic.neighbors import BruteIndex, IVFIndex, IVFRQIndex, calibrate_index  # noqa: E402
from sksemantic.utils import release_pages  # noqa: E402

D = 384
N_EVAL, N_CAL = 1000, 300


def _normalise(a):
    a /= np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    return a


def base_and_queries(data, seed=0):
    """Real embeddings (tiling sources) and the held-out evaluation and calibration
    queries."""
    d = data_dir(data)
    parts = [np.load(d / f"{name}_emb.npy", mmap_mode="r") for name in ("wordnet", "debian")]
    base = _normalise(np.concatenate([np.asarray(p, dtype=np.float32) for p in parts]))
    rng = np.random.default_rng(seed)
    held = rng.choice(len(base), N_EVAL + N_CAL, replace=False)
    keep = np.ones(len(base), dtype=bool)
    keep[held] = False
    return base[keep], base[held[:N_EVAL]], base[held[N_EVAL:]]


def generate(path, n, base, noise, chunk, seed=1):
    """``n`` rows of tiled, noised, normalised real embeddings written to ``path``."""
    rng = np.random.default_rng(seed)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, D))
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        block = base[rng.integers(len(base), size=m)]
        block += rng.standard_normal((m, D), dtype=np.float32) * np.float32(noise / np.sqrt(D))
        out[s : s + m] = _normalise(block)
    out.flush()
    del out


def exact_topk_chunked(Q, X, k, chunk):
    """Exact cosine top-k of unit queries over unit rows of ``X`` (a memmap), a chunk
    of ``X`` at a time, merged (torch products and ``torch.topk``)."""
    import torch

    q = torch.from_numpy(np.ascontiguousarray(Q, dtype=np.float32))
    best_s = torch.full((len(Q), k), -np.inf)
    best_i = torch.full((len(Q), k), -1, dtype=torch.int64)
    for s in range(0, len(X), chunk):
        x = torch.from_numpy(np.array(X[s : s + chunk]))
        release_pages(X[s : s + chunk])  # the pass must not leave the file resident
        v, i = torch.topk(q @ x.T, min(k, len(x)), dim=1)
        cat_s = torch.cat([best_s, v], dim=1)
        cat_i = torch.cat([best_i, i + s], dim=1)
        top = torch.topk(cat_s, k, dim=1)
        best_s, best_i = top.values, torch.gather(cat_i, 1, top.indices)
    return best_s.numpy(), best_i.numpy()


def recall_at_k(scores, exact_scores, k, rtol=1e-5):
    """Tie-aware recall@k: found scores at least the exact k-th (float32 tolerance)."""
    kth = exact_scores[:, k - 1]
    tol = rtol * np.maximum(1.0, np.abs(kth))
    return float(np.mean(np.minimum((scores[:, :k] >= (kth - tol)[:, None]).sum(1), k) / k))


class MemoryWatch:
    """Peak ``RssAnon`` sampled in a thread, and ``VmHWM`` reset at start (Linux)."""

    def __init__(self):
        self.peak_anon = 0.0
        self._stop = threading.Event()

    @staticmethod
    def _status(field):
        try:
            with open("/proc/self/status") as fh:
                for line in fh:
                    if line.startswith(field + ":"):
                        return int(line.split()[1]) / 1024.0
        except OSError:
            pass
        return float("nan")

    def __enter__(self):
        try:  # "5" resets the peak resident size (VmHWM) to the current one
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
        except OSError:
            pass
        self.base_anon = self._status("RssAnon")
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(0.05):
            self.peak_anon = max(self.peak_anon, self._status("RssAnon"))

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak_anon = max(self.peak_anon, self._status("RssAnon"))
        self.peak_rss = self._status("VmHWM")
        if not self.peak_rss == self.peak_rss:  # no /proc: the process's high-water mark
            import resource

            self.peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_index(name, index, X, Q_eval, Q_cal, exact_eval, exact_cal, k, data_mib,
              probe_grid=()):
    t = time.perf_counter()
    with MemoryWatch() as mem:
        index.fit(X)
    build = time.perf_counter() - t
    cal = calibrate_index(index, k, 0.95, Q=Q_cal, exact=exact_cal, source="held-out")
    knob = cal.value
    if cal.exact:  # the smallest probe reaching the target, whatever it costs
        values = np.unique(np.round(np.geomspace(1, index.n_lists_, 16)).astype(np.int64))
        R = index.recall_curve(k, *exact_cal, values, Q=Q_cal)
        low = R.mean(axis=0) - 1.645 * R.std(axis=0, ddof=1) / np.sqrt(len(R))
        ok = np.flatnonzero(low >= 0.95)
        knob = int(values[ok[0]]) if ok.size else index.n_lists_
    index.query(Q_eval[:50], k, knob=knob)  # warm the pages the probes touch
    t = time.perf_counter()
    s, _, _ = index.query(Q_eval, k, knob=knob)
    qps = len(Q_eval) / (time.perf_counter() - t)
    row = {
        "index": name, "build_s": round(build, 1),
        "peak_rss_mib": round(mem.peak_rss, 1),
        "peak_anon_mib": round(mem.peak_anon, 1),
        "anon_over_data": round((mem.peak_anon - mem.base_anon) / data_mib, 3),
        "bytes_per_vector": round(index.resident_bytes_per_vector(), 1),
        "n_lists": int(index.n_lists_), "n_probe": int(knob),
        **({"code_size": index.code_size, "n_rescore": index._resolved_n_rescore(k)}
           if isinstance(index, IVFRQIndex) else {}),
        "calibration": cal.describe(),
        "recall@10": round(recall_at_k(s, exact_eval[0], k), 4),
        "qps": round(qps, 1),
    }
    print(json.dumps(row), flush=True)
    for value in probe_grid:  # the speed and recall at other settings
        if value != knob and value <= index.n_lists_:
            t = time.perf_counter()
            s, _, _ = index.query(Q_eval, k, knob=value)
            qps = len(Q_eval) / (time.perf_counter() - t)
            print(json.dumps({"index": name, "n_probe": int(value),
                              "recall@10": round(recall_at_k(s, exact_eval[0], k), 4),
                              "qps": round(qps, 1)}), flush=True)
    return row


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10_000_000, help="vectors to index")
    p.add_argument("--data", default=None, help="folder of the real embeddings")
    p.add_argument("--out", required=True, help="directory for the data and index files")
    p.add_argument("--skip-generate", action="store_true",
                   help="reuse the data file of an earlier run in --out")
    p.add_argument("--subset", type=int, default=1_000_000,
                   help="vectors of the in-memory exact top-k timing")
    p.add_argument("--noise", type=float, default=0.3,
                   help="relative norm of the noise added to each tiled embedding")
    p.add_argument("--chunk", type=int, default=200_000, help="rows per generated chunk")
    p.add_argument("--code-size", type=int, default=None,
                   help="ivf_rq bytes of codes (default: the index's default)")
    p.add_argument("--n-lists", type=int, default=None,
                   help="lists of both indexes (default: 4 sqrt(n))")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--indexes", default="ivf,ivf_rq", help="indexes to build: ivf, ivf_rq")
    p.add_argument("--probe-grid", default="",
                   help="comma-separated n_probe values also measured on the queries")
    args = p.parse_args(argv)
    wanted = set(args.indexes.split(","))
    probe_grid = [int(v) for v in args.probe_grid.split(",") if v]
    if not wanted or wanted - {"ivf", "ivf_rq"}:
        raise SystemExit(f"--indexes takes ivf and/or ivf_rq, got {args.indexes!r}.")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data_file = out / f"vectors_{args.n}x{D}.npy"
    base, Q_eval, Q_cal = base_and_queries(args.data)
    if not args.skip_generate or not data_file.is_file():
        t = time.perf_counter()
        generate(data_file, args.n, base, args.noise, args.chunk)
        print(f"generated {data_file} in {time.perf_counter() - t:.1f} s", flush=True)
    del base
    X = np.load(data_file, mmap_mode="r")
    if X.shape != (args.n, D):
        raise SystemExit(f"{data_file} holds {X.shape}, not ({args.n}, {D}).")
    data_mib = X.nbytes / 2**20
    print(f"data: {X.shape[0]:,} x {D} float32, {data_mib:,.0f} MiB", flush=True)

    t = time.perf_counter()
    truth = out / f"exact_{args.n}_k{args.k}.npz"  # the data file's, kept beside it
    if args.skip_generate and truth.is_file():
        with np.load(truth) as f:
            exact_eval, exact_cal = (f["eval_s"], f["eval_i"]), (f["cal_s"], f["cal_i"])
    else:
        exact_eval = exact_topk_chunked(Q_eval, X, args.k, args.chunk)
        exact_cal = exact_topk_chunked(Q_cal, X, args.k, args.chunk)
        np.savez(truth, eval_s=exact_eval[0], eval_i=exact_eval[1], cal_s=exact_cal[0],
                 cal_i=exact_cal[1])
    print(f"ground truth (exact, chunked) in {time.perf_counter() - t:.1f} s", flush=True)

    m = min(args.subset, args.n)
    sub = np.array(X[:m])
    release_pages(X[:m])
    exact_qps = {}
    brute = BruteIndex("cosine").fit(sub)  # timed searching only, as the indexes are
    for name, search in (
        ("torch", lambda A, _: exact_topk(Q_eval, A, args.k, chunk=256)),
        ("BruteIndex", lambda _, index: index.query(Q_eval, args.k)),
    ):
        search(sub, brute)  # warm
        t = time.perf_counter()
        search(sub, brute)
        exact_qps[name] = N_EVAL / (time.perf_counter() - t)
        print(json.dumps({"index": f"exact top-k ({name}, {m:,} in memory)",
                          "qps": round(exact_qps[name], 1)}), flush=True)
    del sub, brute

    rows = []
    for name, cls, extra in (
        ("ivf (disk)", IVFIndex, {}),
        ("ivf_rq (disk)", IVFRQIndex,
         {} if args.code_size is None else {"code_size": args.code_size}),
    ):
        if name.split()[0] not in wanted:
            continue
        index = cls("cosine", n_lists=args.n_lists, random_state=0,
                    storage=out / f"{name.split()[0]}_store", **extra)
        rows.append(run_index(name, index, X, Q_eval, Q_cal, exact_eval, exact_cal, args.k,
                              data_mib, probe_grid))
        del index
    with open(out / f"results_{args.n}.json", "w") as fh:
        json.dump({"n": args.n, "exact_qps_subset": exact_qps, "subset": m,
                   "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
