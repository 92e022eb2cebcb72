"""The ``sksemantic`` command line: the demo (main job) and the same jobs on your ``.npy``.

Run ``sksemantic --help`` (or ``python -m sksemantic --help``) for the subcommands:

- ``demo``: the main job on the shipped Debian corpus: similarity graph, communities,
  near-duplicate groups, semantic IDs and a few searches; prints a report and writes a
  picture of the graph coloured by community.
- ``graph``: k-nearest-neighbour graph of an embeddings ``.npy`` file, saved as ``.npz``.
- ``dedup``: near-duplicate groups of an embeddings file (group label per row).
- ``ids``: semantic IDs (residual k-means codes, unique) for an embeddings file.
- ``index``: a search index of corpus embeddings, saved to a directory.
- ``search``: top-k search of query embeddings in corpus embeddings or a saved index.

Steps and progress go to stderr, results to stdout or files; errors are one line on
stderr (exit status 2). The jobs other than the demo live in :mod:`sksemantic.cli`.
"""

import sys
import time

import numpy as np

from .cli import main as _cli_main
from .cli._console import Step as _Step
from .cli._console import report as _log
from .cli._console import status as _status
from .cli._io import Output

__all__ = ["main"]


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

    if args.out:
        Output(args.out, "--out")  # writable: checked before any work
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

            embedder = TextEmbedder(verbose=0 if args.quiet else 1)
            with _Step("re-embedding the texts with all-MiniLM-L6-v2"):
                X = embedder.fit_transform(texts).astype(np.float32)
        except ImportError as exc:
            _status(f"    (no text model: {exc}; using the shipped embeddings)")
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
    for c in range(min(3, len(communities))):
        members = np.flatnonzero(community == c)
        top = np.bincount(sections[members]).argmax()
        share = np.mean(sections[members] == top)
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

            draw_communities(G, community, sections, names, args.out, n_neighbors=10,
                             min_similarity=0.5)
    _status(f"done in {time.perf_counter() - t0:.1f} s")
    return 0


# -- jobs on the user's own embeddings: sksemantic/cli ----------------------------------
def main(argv=None):
    """Entry point of the ``sksemantic`` command (see :func:`sksemantic.cli.main`)."""
    return _cli_main(argv, demo=run_demo)


if __name__ == "__main__":
    sys.exit(main())
