"""k-NN graph construction, side by side: sksemantic, semnet, pynndescent and scikit-learn.

Every method runs in its own process on the same float32 array (saved once to a temporary
.npy), so peak memory is that process's own: its high-water mark (``VmHWM``) minus its
resident size right after loading the data and importing its library. Recall@k is measured against an exact float64 reference on
sampled rows, computed here, independently of every method; a found neighbour counts when
it is no farther than the exact k-th neighbour, so exact duplicates (ties) do not count
against anyone.

The data folder is ``--data-dir`` or ``$SKSEMANTIC_DATA`` (``../shared/data`` on the
project's machines; see ``benchmarks/_common.py``). ``--data`` names a corpus or a
concatenation of corpora joined by ``+`` (``debian+wordnet20k``). For sksemantic the
table also shows the recall the estimator reported for its own graph
(``self_join_calibration_``), next to the recall measured here.

Usage (from the repository root)::

    python benchmarks/bench_graph.py --data wordnet
    python benchmarks/bench_graph.py --data debian+wordnet20k --methods sksemantic,pynndescent
    python benchmarks/bench_graph.py --data random --n 100000 --d 768 \
        --methods sksemantic-brute,sksemantic,semnet,sklearn-brute
    python benchmarks/bench_graph.py --data random --n 1000000 --d 64 --methods sksemantic
    python benchmarks/bench_graph.py --data shape:anisotropic --n 50000 --d 384 --methods sksemantic

semnet runs in the peers environment made by ``../shared/tools/peers-venv`` (its python is
found automatically, or pass ``--peer-python``), as its README shows:
``SemanticNetwork(top_k=k).fit_transform(embeddings)`` with its default annoy settings.
Its ``thresh`` is set to -1 so that no neighbour is dropped by the similarity cut-off:
recall then measures its search, not the threshold.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, data_dir, peers_python  # noqa: E402

METHODS = {
    "sksemantic": "SemanticGraphTransformer(algorithm='auto') (IVF beyond 20k points)",
    "sksemantic-brute": "SemanticGraphTransformer(algorithm='brute') (exact)",
    "sksemantic-annoy": "SemanticGraphTransformer(algorithm='annoy')",
    "semnet": "semnet 0.1.9 SemanticNetwork (annoy, 10 trees)",
    "pynndescent": "pynndescent NNDescent (defaults)",
    "sklearn-brute": "KNeighborsTransformer(algorithm='brute') (exact)",
}

CHILD = r"""
import json, sys, time
import numpy as np

def status_kb(field):
    # /proc's VmHWM, not getrusage's ru_maxrss: ru_maxrss survives exec, so a child
    # would report the parent's peak from before it started.
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])

method, data_path, sample_path, k, metric, out_path = sys.argv[1:7]
k = int(k)
X = np.load(data_path)
sample = np.load(sample_path)
# Import first, so the baseline counts the libraries and peak counts only the work.
if method.startswith("sksemantic"):
    from sksemantic.graph import SemanticGraphTransformer
elif method == "sklearn-brute":
    from sklearn.neighbors import KNeighborsTransformer
elif method == "semnet":
    from semnet import SemanticNetwork
elif method == "pynndescent":
    from pynndescent import NNDescent
base = status_kb("VmRSS")
t0 = time.perf_counter()
if method.startswith("sksemantic"):
    alg = {"sksemantic": "auto", "sksemantic-brute": "brute", "sksemantic-annoy": "annoy"}[method]
    est = SemanticGraphTransformer(n_neighbors=k, metric=metric, algorithm=alg, random_state=0)
    G = est.fit_transform(X).tocsr()
    cal = est.self_join_calibration_
    detail = est.algorithm_ if cal is None else cal.describe()
    estimate = None if cal is None else cal.recall
elif method == "sklearn-brute":
    G = KNeighborsTransformer(n_neighbors=k, metric=metric, algorithm="brute").fit_transform(X).tocsr()
    detail = "brute"
elif method == "pynndescent":
    nnd = NNDescent(X, n_neighbors=k + 1, metric=metric, random_state=0)
    nb_ids, _ = nnd.neighbor_graph
    detail = "NNDescent n_neighbors=k+1"
elif method == "semnet":
    net = SemanticNetwork(top_k=k, thresh=-1.0, metric="angular" if metric == "cosine" else metric)
    graph = net.fit_transform(X)
    detail = "annoy n_trees=10"
elapsed = time.perf_counter() - t0
peak = status_kb("VmHWM")
ids = np.full((len(sample), k), -1, dtype=np.int64)
estimate = locals().get("estimate")
if method == "pynndescent":
    for r, i in enumerate(sample):
        nb = [j for j in nb_ids[i] if j != i][:k]
        ids[r, : len(nb)] = nb
elif method == "semnet":
    for r, i in enumerate(sample):
        nb = sorted(graph[int(i)].items(), key=lambda kv: -kv[1]["weight"])
        nb = [j for j, _ in nb if j != i][:k]
        ids[r, : len(nb)] = nb
else:
    for r, i in enumerate(sample):
        cols = G.indices[G.indptr[i]:G.indptr[i + 1]]
        vals = G.data[G.indptr[i]:G.indptr[i + 1]]
        order = np.argsort(vals, kind="stable")
        nb = [j for j in cols[order] if j != i][:k]
        ids[r, : len(nb)] = nb
np.save(out_path + ".npy", ids)
json.dump({"seconds": elapsed, "peak_extra_mb": (peak - base) / 1024, "detail": detail,
           "estimate": estimate},
          open(out_path + ".json", "w"))
"""


def _prepared64(X, metric):
    X64 = X.astype(np.float64)
    if metric == "cosine":
        norms = np.linalg.norm(X64, axis=1)
        X64 /= np.where(norms > 0, norms, 1)[:, None]
    return X64


def tie_aware_recall(X64, sample, found, kth, metric):
    """Share of found neighbours no farther than the exact k-th (ties count as hits).

    Real embeddings hold exact duplicates, so the "true" k nearest are not unique;
    a neighbour at the k-th exact distance (up to 1e-6) is as correct as any other.
    """
    hits = 0
    for r, i in enumerate(sample):
        ids = found[r][found[r] >= 0]
        diff = X64[ids] - X64[i]
        d = np.einsum("ij,ij->i", diff, diff)
        hits += int(np.sum(d <= kth[r] + 1e-6))
    return hits / found.size


def exact_neighbours(X, sample, k, metric):
    """Float64 exact top-k (self excluded) for the sampled rows, chunked; and the k-th
    squared distance (in the prepared space) of each."""
    X64 = _prepared64(X, metric)
    out = np.empty((len(sample), k), dtype=np.int64)
    sq = np.einsum("ij,ij->i", X64, X64)
    for s in range(0, len(sample), 100):
        rows = sample[s : s + 100]
        G = X64[rows] @ X64.T
        D = -G if metric == "cosine" else sq[rows, None] + sq[None, :] - 2 * G
        D[np.arange(len(rows)), rows] = np.inf
        part = np.argpartition(D, k, axis=1)[:, :k]
        order = np.argsort(np.take_along_axis(D, part, axis=1), axis=1, kind="stable")
        out[s : s + 100] = np.take_along_axis(part, order, axis=1)
    return out


def load(args):
    if args.data == "random":
        rng = np.random.default_rng(0)
        X = rng.standard_normal((args.n, args.d), dtype=np.float32)
        return X, f"random {args.n:,} x {args.d}"
    if args.data.startswith("shape:"):
        # The synthetic family of the k-means benchmark (256 codewords per level sets
        # the number of blobs: 2,048 for blobs_many, 32 for blobs_few).
        from bench_kmeans_family import make_data

        shape = args.data.split(":", 1)[1]
        X = make_data(shape, args.n, args.d, 256, seed=0)
        return X, f"{shape} {args.n:,} x {args.d} (synthetic)"
    d = data_dir(args.data_dir)
    parts = [np.load(d / f"{name}_emb.npy").astype(np.float32) for name in args.data.split("+")]
    X = np.concatenate(parts)
    return X, f"{args.data} {X.shape[0]:,} x {X.shape[1]} (real MiniLM)"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="wordnet",
                        help="corpus name(s) joined by '+', 'random', or 'shape:NAME' "
                             "(a shape of bench_kmeans_family.py: blobs_many, blobs_few, "
                             "anisotropic, student_t, duplicated, scales)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--d", type=int, default=768)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--metric", default="cosine")
    parser.add_argument("--sample", type=int, default=1000)
    parser.add_argument("--methods", default="sksemantic,semnet,pynndescent")
    parser.add_argument("--peer-python", default=None)
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args()

    X, name = load(args)
    rng = np.random.default_rng(1)
    sample = np.sort(rng.choice(len(X), min(args.sample, len(X)), replace=False))
    t = time.perf_counter()
    exact = exact_neighbours(X, sample, args.k, args.metric)
    X64 = _prepared64(X, args.metric)
    diff = X64[exact[:, -1]] - X64[sample]
    kth = np.einsum("ij,ij->i", diff, diff)
    print(f"# {name}, k={args.k}, metric={args.metric}; exact reference on {len(sample)} rows "
          f"({time.perf_counter() - t:.1f} s)", flush=True)
    input_mb = X.nbytes / 2**20

    tmp = Path(tempfile.mkdtemp(prefix="bench_graph_"))
    np.save(tmp / "X.npy", X)
    np.save(tmp / "sample.npy", sample)
    del X
    if args.metric not in ("cosine", "euclidean"):
        raise SystemExit("tie-aware recall is implemented for cosine and euclidean")
    rows = []
    for method in args.methods.split(","):
        py = sys.executable
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        if method == "semnet":
            py = peers_python(args.peer_python)
            if py is None:
                print("# semnet: no peers environment (../shared/tools/peers-venv); skipped")
                continue
            env.pop("PYTHONPATH")
        out = tmp / method
        cmd = [py, "-c", CHILD, method, str(tmp / "X.npy"), str(tmp / "sample.npy"),
               str(args.k), args.metric, str(out)]
        try:
            subprocess.run(cmd, env=env, check=True, timeout=args.timeout)
        except subprocess.TimeoutExpired:
            rows.append((method, f"did not finish in {args.timeout:.0f} s", "", "", "", "", ""))
            print(f"{method}: timeout", flush=True)
            continue
        res = json.load(open(str(out) + ".json"))
        ids = np.load(str(out) + ".npy")
        recall = tie_aware_recall(X64, sample, ids, kth, args.metric)
        est = res.get("estimate")
        rows.append((method, f"{res['seconds']:.1f}", f"{res['peak_extra_mb']:.0f}",
                     f"{res['peak_extra_mb'] / input_mb:.2f}", f"{recall:.3f}",
                     "" if est is None else f"{est:.3f}", res["detail"]))
        print(f"{method}: {res['seconds']:.1f} s, recall@{args.k} {recall:.3f}", flush=True)

    print()
    print(f"{name}; input {input_mb:.0f} MiB (float32); recall@{args.k} vs exact on "
          f"{len(sample)} rows")
    header = ("method", "seconds", "peak MiB", "peak/input", f"recall@{args.k}",
              "reported", "detail")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(r) + " |")
    base = {r[0]: r for r in rows}
    for ours in ("sksemantic", "sksemantic-brute"):
        for peer in ("semnet", "pynndescent", "sklearn-brute"):
            if ours in base and peer in base:
                try:
                    ratio = float(base[peer][1]) / float(base[ours][1])
                    print(f"speed-up {ours} vs {peer}: {ratio:.1f}x")
                except ValueError:
                    pass


if __name__ == "__main__":
    main()
