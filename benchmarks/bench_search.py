"""Search throughput and recall@10 against exact top-k, in distribution and across corpora.

Every method answers the same batches of queries over the same corpus, back to back in
one process; throughput is reported as a ratio to the exact baseline measured in the
same run:

- ``exact top-k``: torch matrix products over query chunks and ``torch.topk`` (what
  ``util.semantic_search`` does without its Python heap merge): the baseline;
- ``sksemantic``: ``SemanticSearch()`` with its default settings (``target_recall=0.95``);
  the recall it reported for the batch (``batch_calibration_`` when the batch was
  re-calibrated, else ``calibration_``) is shown beside the measured one;
- ``faiss IVF``: ``IndexIVFFlat`` with ``4 sqrt(n)`` lists, ``nprobe`` tuned on the very
  queries being measured (an oracle: the smallest ``nprobe`` reaching recall 0.95 on the
  batch's first 1,000 queries);
- ``hnswlib``: ``M=16, ef_construction=100``, ``ef`` tuned the same way.

Cases (``--cases``), all real MiniLM embeddings from the data folder (``--data`` or
``$SKSEMANTIC_DATA``; ``../shared/data`` on the project's machines):

- ``wordnet-28k`` / ``wordnet-100k``: WordNet definitions, queried by held-out
  definitions (in distribution);
- ``debian->wordnet``: Debian package descriptions querying 100,000 WordNet definitions;
- ``wordnet->debian``: WordNet definitions querying the 25,000 Debian descriptions;
- ``lemmas->wordnet20k``: WordNet lemma lists querying the 20,000 definitions.

recall@10 is tie-aware, against exact float64 search. Batches of 1,000 and 10,000
queries (``--batches``); each time is the best of ``--repeat`` runs.

Usage (from the repository root)::

    python benchmarks/bench_search.py
    python benchmarks/bench_search.py --cases wordnet-100k --batches 10000
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import data_dir, exact_topk, tie_aware_recall, timed  # noqa: E402

from sksemantic.search import SemanticSearch  # noqa: E402

CASES = ("wordnet-28k", "wordnet-100k", "debian->wordnet", "wordnet->debian",
         "lemmas->wordnet20k")


def load_case(name, d):
    emb = lambda n: np.load(d / f"{n}_emb.npy").astype(np.float32)  # noqa: E731
    rng = np.random.default_rng(0)
    if name in ("wordnet-28k", "wordnet-100k"):
        W = emb("wordnet")
        perm = rng.permutation(len(W))
        n = 28_000 if name == "wordnet-28k" else 100_000
        return W[perm[:n]], W[perm[n : n + 10_000]]
    if name == "debian->wordnet":
        W, D = emb("wordnet"), emb("debian")
        return W[rng.permutation(len(W))[:100_000]], D[rng.permutation(len(D))[:10_000]]
    if name == "wordnet->debian":
        W, D = emb("wordnet"), emb("debian")
        return D, W[rng.permutation(len(W))[:10_000]]
    if name == "lemmas->wordnet20k":
        return emb("wordnet20k"), np.load(d / "wordnet20k_query_emb.npy").astype(np.float32)[
            rng.permutation(20_000)[:10_000]
        ]
    raise SystemExit(f"unknown case {name!r}; choose from {CASES}")


def tune(search_fn, values, Q, X, exact_s, target=0.95, n=1000):
    """The smallest value whose measured recall on the first ``n`` queries reaches
    ``target`` (an oracle)."""
    Q, exact_s = Q[:n], exact_s[:n]
    for v in values:
        ids = search_fn(Q, v)
        r = tie_aware_recall(Q, X, ids, 10, exact_scores=exact_s)[0]
        if r >= target:
            return v, r
    return values[-1], r


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=None)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--batches", default="1000,10000")
    parser.add_argument("--peers", default="faiss,hnswlib")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--ours", default="auto",
                        help="SemanticSearch algorithms to run, e.g. auto,hnsw")
    args = parser.parse_args()
    d = data_dir(args.data)
    import torch

    torch.set_num_threads(2)
    batches = [int(b) for b in args.batches.split(",")]
    peers = [p for p in args.peers.split(",") if p]
    rows = []
    header = ("case", "corpus", "batch", "method", "queries/s", "x exact", "recall@10",
              "reported", "setting")
    for case in args.cases.split(","):
        X, Qall = load_case(case, d)
        print(f"# {case}: corpus {X.shape}, queries {Qall.shape}", flush=True)
        ours_algs = [a for a in args.ours.split(",") if a]
        fitted = {}
        for alg in ours_algs:
            t_fit, est = timed(SemanticSearch(algorithm=alg, random_state=0).fit, X)
            fitted[alg] = est
            print(f"#   SemanticSearch(algorithm={alg!r}) fit {t_fit:.1f} s: "
                  f"{est.calibration_.describe()}", flush=True)
        built = {}
        if "faiss" in peers:
            import faiss

            faiss.omp_set_num_threads(2)
            Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
            nlist = int(round(4 * np.sqrt(len(X))))
            quant = faiss.IndexFlatIP(X.shape[1])
            ivf = faiss.IndexIVFFlat(quant, X.shape[1], nlist, faiss.METRIC_INNER_PRODUCT)
            t = time.perf_counter()
            ivf.train(Xn)
            ivf.add(Xn)
            built["faiss"] = (ivf, nlist, time.perf_counter() - t)
        if "hnswlib" in peers:
            import hnswlib

            h = hnswlib.Index(space="cosine", dim=X.shape[1])
            t = time.perf_counter()
            h.init_index(max_elements=len(X), M=16, ef_construction=100, random_seed=0)
            h.add_items(X, np.arange(len(X)), num_threads=2)
            built["hnswlib"] = (h, None, time.perf_counter() - t)
        for b in batches:
            Q = Qall[:b]
            t_ex, (ex_s, ex_i) = timed(exact_topk, Q, X, 10, repeat=args.repeat)
            qps_ex = b / t_ex
            rows.append((case, len(X), b, "exact top-k (torch)", f"{qps_ex:.0f}", "1.0",
                         f"{tie_aware_recall(Q, X, ex_i, 10, exact_scores=ex_s)[0]:.3f}", "",
                         ""))

            for alg, est in fitted.items():

                def ours(Q=Q, est=est):
                    est.batch_calibration_ = None
                    return est.kneighbors(Q, 10, return_distance=False)

                t, ids = timed(ours, repeat=args.repeat)
                rec = tie_aware_recall(Q, X, ids, 10, exact_scores=ex_s)[0]
                cal = est.batch_calibration_ or est.calibration_
                setting = "exact" if cal.exact else f"{cal.knob}={cal.value} ({cal.source})"
                name = "sksemantic" if alg == "auto" else f"sksemantic {alg}"
                rows.append((case, len(X), b, name, f"{b / t:.0f}", f"{t_ex / t:.1f}",
                             f"{rec:.3f}", f"{cal.recall:.3f}", setting))
            if "faiss" in built:
                ivf, nlist, _ = built["faiss"]
                Qn = Q / np.linalg.norm(Q, axis=1, keepdims=True)

                def fs(Qx, v, ivf=ivf):
                    ivf.nprobe = int(v)
                    return ivf.search(np.ascontiguousarray(Qx / np.linalg.norm(Qx, axis=1, keepdims=True)), 10)[1]

                grid = [v for v in (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384,
                                    512, 768, 1024) if v <= nlist] + [nlist]
                v, _ = tune(fs, grid, Q, X, ex_s)
                ivf.nprobe = int(v)
                t, ids = timed(lambda ivf=ivf, Qn=Qn: ivf.search(np.ascontiguousarray(Qn), 10)[1],
                               repeat=args.repeat)
                rec = tie_aware_recall(Q, X, ids, 10, exact_scores=ex_s)[0]
                rows.append((case, len(X), b, "faiss IVF (oracle nprobe)", f"{b / t:.0f}",
                             f"{t_ex / t:.1f}", f"{rec:.3f}", "", f"nprobe={v} of {nlist}"))
            if "hnswlib" in built:
                h = built["hnswlib"][0]

                def hs(Qx, v, h=h):
                    h.set_ef(int(v))
                    return h.knn_query(Qx, k=10, num_threads=2)[0]

                v, _ = tune(hs, [16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024,
                                 1536, 2048], Q, X, ex_s)
                h.set_ef(int(v))
                t, ids = timed(lambda h=h, Q=Q: h.knn_query(Q, k=10, num_threads=2)[0],
                               repeat=args.repeat)
                rec = tie_aware_recall(Q, X, ids, 10, exact_scores=ex_s)[0]
                rows.append((case, len(X), b, "hnswlib (oracle ef)", f"{b / t:.0f}",
                             f"{t_ex / t:.1f}", f"{rec:.3f}", "", f"ef={v}"))
            for r in rows[-(1 + len(fitted) + len(built)):]:
                print("  ", " | ".join(str(x) for x in r), flush=True)
        if built:
            print("#   peers' build seconds: " + ", ".join(
                f"{k} {v[2]:.1f}" for k, v in built.items()), flush=True)
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(str(x) for x in r) + " |")


if __name__ == "__main__":
    main()
