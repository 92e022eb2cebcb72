"""Query throughput and recall@10 of SemanticSearch against the exact and annoy baselines.

Side by side, on the same corpus and queries:

- ``util.semantic_search``: sentence-transformers' exact search (torch matmul + topk in
  chunks). When sentence-transformers is not installed, the same documented algorithm is
  run here in torch (query chunks of 100, corpus chunks of 500,000, ``torch.topk``).
- ``annoy (tutorial)``: a plain annoy index as the TensorFlow semantic-search tutorial
  builds it (``metric="angular"``, 100 trees, ``get_nns_by_vector(q, k)`` per query,
  annoy's default ``search_k``), at the full dimension.
- ``SemanticSearch`` with ``algorithm="brute"`` (exact), ``"ivf"`` at several
  ``n_probe`` and ``"annoy"``.

Data (from ``../shared/data``, see its README):

- ``wordnet-384``: 100,000 real all-MiniLM-L6-v2 embeddings of WordNet definitions (a
  seeded sample of ``wordnet_emb.npy``), queried by (a) 1,000 held-out definitions (rows
  left out of the corpus: in-distribution queries) and (b) 1,000 WordNet lemma queries
  (``wordnet20k_query_emb.npy``: short lemma lists, a shifted query distribution);
- ``random-768``: 100,000 x 768 Gaussian vectors (normalised), 1,000 random queries.

recall@10 is against exact search (the ``util.semantic_search`` result). Batch
throughput: all queries in one call (annoy: a loop, as annoy has no batch query).
Single-query latency: the median over 200 calls with one query each.

Run from the repository root (takes a few minutes on 2 cores)::

    python benchmarks/bench_search.py [--data ../shared/data] [--n 100000] [--quick]
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sksemantic.search import SemanticSearch  # noqa: E402


# -- the exact baseline ------------------------------------------------------------------
def _semantic_search_fn():
    try:
        from sentence_transformers import util

        return util.semantic_search, "sentence_transformers.util.semantic_search"
    except ImportError:
        return _semantic_search_torch, "util.semantic_search algorithm (re-implemented)"


def _semantic_search_torch(query_embeddings, corpus_embeddings, query_chunk_size=100,
                           corpus_chunk_size=500000, top_k=10):
    """sentence-transformers' documented algorithm: cosine scores and topk, chunked."""
    import torch

    q = torch.nn.functional.normalize(query_embeddings, dim=1)
    c = torch.nn.functional.normalize(corpus_embeddings, dim=1)
    out = [[] for _ in range(len(q))]
    for qs in range(0, len(q), query_chunk_size):
        for cs in range(0, len(c), corpus_chunk_size):
            scores = q[qs : qs + query_chunk_size] @ c[cs : cs + corpus_chunk_size].T
            vals, idx = torch.topk(scores, min(top_k, scores.shape[1]), dim=1, sorted=False)
            for r in range(len(vals)):
                out[qs + r].extend(
                    {"corpus_id": int(cs + i), "score": float(s)}
                    for i, s in zip(idx[r].tolist(), vals[r].tolist(), strict=True)
                )
    return [sorted(r, key=lambda h: h["score"], reverse=True)[:top_k] for r in out]


# -- timing helpers ----------------------------------------------------------------------
def _timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def _latency_ms(fn, Q, n=200):
    times = []
    for q in Q[:n]:
        t = time.perf_counter()
        fn(q[None, :])
        times.append(time.perf_counter() - t)
    return 1e3 * float(np.median(times))


def _recall(ids, exact):
    return float(np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(ids, exact, strict=True)]))


# -- builders: each returns (query function: Q -> ids, build seconds) ---------------------
def build_exact(X, k, fn):
    import torch

    Xt = torch.from_numpy(X)

    def query(Qb):
        res = fn(torch.from_numpy(Qb), Xt, top_k=k)
        return np.array([[h["corpus_id"] for h in r] for r in res])

    return query, 0.0


def build_annoy_tutorial(X, k, n_trees):
    from annoy import AnnoyIndex

    def build():
        index = AnnoyIndex(X.shape[1], "angular")
        for i, v in enumerate(X):
            index.add_item(i, v)
        index.build(n_trees)
        return index

    index, build_s = _timed(build)

    def query(Qb):
        return np.array([index.get_nns_by_vector(q, k) for q in Qb])

    return query, build_s


def build_sksemantic(X, k, **params):
    est = SemanticSearch(n_neighbors=k, random_state=0, **params)
    _, build_s = _timed(est.fit, X)

    def query(Qb):
        return est.kneighbors(Qb, k, return_distance=False)

    return query, build_s


# -- data ---------------------------------------------------------------------------------
def load_corpora(data, n, n_queries, rng, quick):
    """(name, corpus, [(query set name, queries), ...]) for each corpus."""
    W = np.load(data / "wordnet_emb.npy")
    perm = rng.permutation(len(W))
    X = W[np.sort(perm[:n])].astype(np.float32)
    held_out = W[perm[n : n + n_queries]].astype(np.float32)
    lemmas = np.load(data / "wordnet20k_query_emb.npy")[:n_queries].astype(np.float32)
    corpora = [("wordnet-384", X, [("held-out definitions", held_out),
                                   ("lemma queries", lemmas)])]
    if not quick:
        R = rng.standard_normal((n + n_queries, 768), dtype=np.float32)
        R /= np.linalg.norm(R, axis=1, keepdims=True)
        corpora.append(("random-768", R[:n], [("random queries", R[n:])]))
    return corpora


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--annoy-trees", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="skip the random-768 set")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    k = 10
    fn, fn_name = _semantic_search_fn()
    print(f"exact baseline: {fn_name}")
    rows = []
    for corpus_name, X, query_sets in load_corpora(args.data, args.n, args.queries, rng,
                                                   args.quick):
        print(f"\n## {corpus_name}: corpus {X.shape[0]:,} x {X.shape[1]}", flush=True)
        builders = [
            ("util.semantic_search (exact)", lambda X=X: build_exact(X, k, fn)),
            (f"annoy (tutorial, {args.annoy_trees} trees)",
             lambda X=X: build_annoy_tutorial(X, k, args.annoy_trees)),
            ("SemanticSearch brute", lambda X=X: build_sksemantic(X, k, algorithm="brute")),
        ]
        for n_probe in (None, 64, 128):
            builders.append((
                f"SemanticSearch ivf n_probe={n_probe or 'default'}",
                lambda X=X, p=n_probe: build_sksemantic(X, k, algorithm="ivf", n_probe=p),
            ))
        builders.append(("SemanticSearch annoy search_k=20000", lambda X=X: build_sksemantic(
            X, k, algorithm="annoy", search_k=20_000)))
        exact = {}
        base_qps = {}
        for label, build in builders:
            query, build_s = build()
            for qname, Q in query_sets:
                ids, sec = _timed(query, Q)
                lat = _latency_ms(query, Q)
                qps = len(Q) / sec
                if qname not in exact:
                    exact[qname], base_qps[qname] = ids, qps
                rec = _recall(ids, exact[qname])
                name = f"{corpus_name}, {qname}"
                rows.append((name, label, rec, qps, qps / base_qps[qname], lat, build_s))
                print(f"{qname:22s} {label:38s} recall@10 {rec:.3f}  batch {qps:9.0f} q/s "
                      f"({qps / base_qps[qname]:5.1f}x exact)  single {lat:7.2f} ms  "
                      f"build {build_s:6.1f} s", flush=True)
            del query

    print("\n| data | method | recall@10 | batch q/s | x exact | single query ms | build s |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, label, rec, qps, ratio, lat, build_s in rows:
        print(f"| {name} | {label} | {rec:.3f} | {qps:,.0f} | {ratio:.1f} | {lat:.2f} "
              f"| {build_s:.1f} |")


if __name__ == "__main__":
    main()
