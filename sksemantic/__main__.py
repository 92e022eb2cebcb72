"""The ``sksemantic`` command line: the demo (main job) and the same jobs on your ``.npy``.

Run ``sksemantic --help`` (or ``python -m sksemantic --help``) for the subcommands:

- ``demo``: the main job on the shipped Debian corpus: similarity graph, communities,
  near-duplicate groups, semantic IDs and a few searches; prints a report and writes a
  picture of the graph coloured by community.
- ``graph``: k-nearest-neighbour graph of an embeddings ``.npy`` file, saved as ``.npz``.
- ``dedup``: near-duplicate groups of an embeddings file (group label per row).
- ``ids``: semantic IDs (residual k-means codes, unique) for an embeddings file.
- ``search``: top-k search of query embeddings against corpus embeddings.
"""

import argparse
import sys
import time

import numpy as np

__all__ = ["main"]


def _log(msg):
    print(msg, flush=True)


class _Step:
    """Prints a step's name and, on exit, its wall time (progress for long steps)."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        self.t = time.perf_counter()
        print(f"... {self.name}", end="", flush=True)
        return self

    def __exit__(self, *exc):
        print(f" ({time.perf_counter() - self.t:.1f} s)", flush=True)


def _load_npy(path, name):
    try:
        X = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"sksemantic: cannot read {name} from {path!r}: {exc}") from None
    if X.ndim != 2:
        raise SystemExit(f"sksemantic: {name} must be a 2-d array (n_samples, n_features), got shape {X.shape}.")
    return X.astype(np.float32, copy=False)


# -- the demo -------------------------------------------------------------------------
def run_demo(args):
    import networkx as nx
    from sklearn.metrics import adjusted_rand_score

    from .datasets import load_debian_packages
    from .graph import SemanticDeduplicator, SemanticGraphTransformer, to_networkx
    from .ids import SemanticIdAssigner, codes_to_strings
    from .metrics import collision_rate
    from .quantization import RQKMeansEncoder
    from .search import SemanticSearch

    t0 = time.perf_counter()
    data = load_debian_packages()
    X, texts, sections, groups = data.data, data.texts, data.target, data.groups
    names = data.target_names
    _log(f"sksemantic demo: {len(X):,} Debian package descriptions, {X.shape[1]}-d MiniLM "
         f"embeddings (shipped with the package)")

    embedder = None
    if args.embed:
        try:
            from .search import TextEmbedder

            embedder = TextEmbedder()
            with _Step("re-embedding the texts with all-MiniLM-L6-v2"):
                X = embedder.fit_transform(texts).astype(np.float32)
        except ImportError as exc:
            _log(f"    (no text model: {exc}; using the shipped embeddings)")
            embedder = None

    # 1. Graph and communities.
    with _Step("similarity graph (10 neighbours, cosine)"):
        graph = SemanticGraphTransformer(
            n_neighbors=10, mode="similarity", min_similarity=0.5, random_state=0
        ).fit_transform(X)
    with _Step("communities (Louvain on the graph)"):
        G = to_networkx(graph, labels=texts, node_attributes={"section": names[sections].tolist()})
        communities = nx.community.louvain_communities(G, weight="weight", seed=0)
        communities = sorted(communities, key=len, reverse=True)
        community = np.empty(len(X), dtype=np.int64)
        for c, members in enumerate(communities):
            community[list(members)] = c
    modularity = nx.community.modularity(G, communities, weight="weight")
    _log(f"    {G.number_of_edges():,} edges, {len(communities)} communities, "
         f"modularity {modularity:.3f}, ARI vs Debian sections "
         f"{adjusted_rand_score(sections, community):.3f}")
    degree = dict(G.degree(weight="weight"))
    captions = []
    for c in range(len(communities)):
        members = np.flatnonzero(community == c)
        top = np.bincount(sections[members]).argmax()
        share = np.mean(sections[members] == top)
        captions.append(f"{len(members)} pkgs, {share:.0%} {names[top]}")
        if c < 3:
            central = max(members, key=lambda m: degree[m])  # the most typical member
            _log(f"    community {c}: {len(members)} packages, {share:.0%} in '{names[top]}', "
                 f"e.g. \"{texts[central][:60]}\"")

    # 2. Near-duplicates.
    with _Step("near-duplicate groups (cosine >= 0.9)"):
        dedup = SemanticDeduplicator(min_similarity=0.9, random_state=0).fit(X)
    sizes = np.bincount(dedup.labels_)
    multi = np.flatnonzero(sizes > 1)
    same_source = np.mean([
        len(np.unique(groups[dedup.labels_ == g])) == 1 for g in multi
    ]) if multi.size else float("nan")
    _log(f"    {dedup.n_groups_:,} distinct items; {multi.size} groups of 2+ near-duplicates; "
         f"{same_source:.0%} of them lie within one Debian source package")
    if multi.size:
        biggest = multi[np.argmax(sizes[multi])]
        members = np.flatnonzero(dedup.labels_ == biggest)[:3]
        for m in members:
            _log(f"      [{m}] {texts[m][:70]}")

    # 3. Semantic IDs.
    with _Step("semantic IDs (RQ k-means, 3 levels x 16 codes, unique)"):
        encoder = RQKMeansEncoder(n_levels=3, n_clusters=16, random_state=0).fit(X)
        codes = encoder.transform(X)
        assigner = SemanticIdAssigner(encoder, uniqueness="counter")
        ids = assigner.assign(X, keys=[f"pkg{i}" for i in range(len(X))])
    _log(f"    collision rate of the raw codes {collision_rate(codes):.3f}; with the counter "
         f"level every ID is unique ({len(np.unique(ids, axis=0)) == len(ids)})")
    for i, token in zip(range(3), codes_to_strings(ids[:3], fmt="token"), strict=False):
        _log(f"      {token}  {texts[i][:60]}")

    # 4. Searches.
    with _Step("search index"):
        search = SemanticSearch(random_state=0).fit(
            X, metadata=[{"text": t, "section": names[s]} for t, s in zip(texts, sections, strict=True)]
        )
    queries = ["a library for parsing XML documents", "fonts for displaying Chinese text",
               "tools to back up files over the network"]
    Q = embedder.transform_queries(queries) if embedder is not None else None
    if Q is None:
        # No text model: search with items of the corpus as queries ("more like this").
        picks = [int(np.flatnonzero(community == c)[0]) for c in range(min(3, len(communities)))]
        queries = [f"more like: {texts[i][:50]}" for i in picks]
        Q = X[picks]
    results = search.search(Q, top_k=3)
    for q, hits in zip(queries, results, strict=True):
        _log(f"    query: {q}")
        for h in hits:
            _log(f"      {h['score']:.3f}  {h['metadata']['text'][:60]}")

    # 5. Picture.
    if args.out:
        with _Step(f"picture -> {args.out}"):
            from ._demo_plot import draw_communities

            draw_communities(G, community, sections, names, args.out, n_neighbors=10, min_similarity=0.5)
    _log(f"done in {time.perf_counter() - t0:.1f} s")
    return 0


# -- jobs on the user's own embeddings ------------------------------------------------
def run_graph(args):
    import scipy.sparse as sp

    from .graph import SemanticGraphTransformer

    X = _load_npy(args.embeddings, "embeddings")
    est = SemanticGraphTransformer(
        n_neighbors=args.n_neighbors, metric=args.metric, mode=args.mode,
        min_similarity=args.min_similarity, algorithm=args.algorithm, random_state=0,
        verbose=1,
    )
    G = est.fit_transform(X)
    sp.save_npz(args.out, G)
    _log(f"graph of {X.shape[0]:,} points ({est.algorithm_}): {G.nnz:,} entries -> {args.out}")
    return 0


def run_dedup(args):
    from .graph import SemanticDeduplicator

    X = _load_npy(args.embeddings, "embeddings")
    dedup = SemanticDeduplicator(min_similarity=args.min_similarity, random_state=0).fit(X)
    np.save(args.out, dedup.labels_)
    _log(f"{X.shape[0]:,} items -> {dedup.n_groups_:,} groups; labels -> {args.out}")
    return 0


def run_ids(args):
    from .ids import SemanticIdAssigner, codes_to_strings
    from .quantization import RQKMeansEncoder

    X = _load_npy(args.embeddings, "embeddings")
    encoder = RQKMeansEncoder(
        n_levels=args.n_levels, n_clusters=args.n_clusters, random_state=0, verbose=1
    ).fit(X)
    ids = SemanticIdAssigner(encoder, uniqueness="counter").assign(X, keys=list(range(len(X))))
    if args.out.endswith(".txt"):
        with open(args.out, "w") as fh:
            fh.write("\n".join(codes_to_strings(ids, fmt=args.format)) + "\n")
    else:
        np.save(args.out, ids)
    _log(f"{X.shape[0]:,} unique semantic IDs of width {ids.shape[1]} -> {args.out}")
    return 0


def run_search(args):
    from .search import SemanticSearch

    corpus = _load_npy(args.corpus, "corpus")
    Q = _load_npy(args.queries, "queries")
    search = SemanticSearch(random_state=0).fit(corpus)
    results = search.search(Q, top_k=args.top_k)
    for qi, hits in enumerate(results):
        print(qi, " ".join(f"{h['corpus_id']}:{h['score']:.4f}" for h in hits))
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="sksemantic",
        description="Similarity graphs, semantic IDs and search over embeddings.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="the main job on the shipped Debian corpus")
    p.add_argument("--out", default="sksemantic-demo.png", help="picture to write ('' for none)")
    p.add_argument("--embed", action="store_true",
                   help="re-embed the texts with the text extra (sentence-transformers)")
    p.set_defaults(func=run_demo)

    p = sub.add_parser("graph", help="k-NN graph of embeddings.npy, saved as .npz")
    p.add_argument("embeddings")
    p.add_argument("--out", default="graph.npz")
    p.add_argument("--n-neighbors", type=int, default=10)
    p.add_argument("--metric", default="cosine")
    p.add_argument("--mode", default="distance", choices=["distance", "connectivity", "similarity"])
    p.add_argument("--min-similarity", type=float, default=None)
    p.add_argument("--algorithm", default="auto")
    p.set_defaults(func=run_graph)

    p = sub.add_parser("dedup", help="near-duplicate groups of embeddings.npy")
    p.add_argument("embeddings")
    p.add_argument("--out", default="groups.npy")
    p.add_argument("--min-similarity", type=float, default=0.9)
    p.set_defaults(func=run_dedup)

    p = sub.add_parser("ids", help="unique semantic IDs for embeddings.npy")
    p.add_argument("embeddings")
    p.add_argument("--out", default="ids.txt", help=".txt for strings, .npy for codes")
    p.add_argument("--n-levels", type=int, default=3)
    p.add_argument("--n-clusters", type=int, default=256)
    p.add_argument("--format", default="plain", choices=["plain", "token"])
    p.set_defaults(func=run_ids)

    p = sub.add_parser("search", help="top-k search of queries.npy in corpus.npy")
    p.add_argument("corpus")
    p.add_argument("queries")
    p.add_argument("--top-k", type=int, default=10)
    p.set_defaults(func=run_search)
    return parser


def main(argv=None):
    """Entry point of the ``sksemantic`` command."""
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
