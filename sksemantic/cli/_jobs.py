"""The command line's jobs on the user's own embeddings.

Each job checks, in this order and before any work: its parameters (by the
estimator's own validation), its output (writable, not an input), then its inputs.
"""

import math

import numpy as np

from ._console import CLIError, Step, estimator_errors, report, status
from ._io import Output, check_index_dir, check_same_width, read_embeddings

__all__ = ["run_dedup", "run_graph", "run_ids", "run_index", "run_search"]

SEED = 0

# Range of the similarity each metric reports (see SemanticGraphTransformer's ``mode``):
# a threshold outside it keeps every link or none, which is never what was meant.
_SIMILARITY_RANGE = {
    "cosine": (-1.0, 1.0, "the cosine similarity lies in [-1, 1]"),
    "euclidean": (0.0, 1.0, "the similarity 1 / (1 + distance) lies in (0, 1]"),
    "manhattan": (0.0, 1.0, "the similarity 1 / (1 + distance) lies in (0, 1]"),
}


def _verbose(args):
    return 0 if args.quiet else 1


def _options(*params, **renamed):
    """Estimator parameter -> option map for :class:`estimator_errors`."""
    out = {p: "--" + p.replace("_", "-") for p in params}
    out.update(renamed)
    return out


def _check_params(est, options):
    """The estimator's own parameter validation, run before any work."""
    with estimator_errors(options):
        est._validate_params()


def check_min_similarity(value, metric):
    """Raise a CLIError when ``--min-similarity`` cannot be met sensibly under ``metric``."""
    if value is None:
        return
    if not math.isfinite(value):
        raise CLIError(f"--min-similarity must be a finite number; got {value}.")
    lo, hi, why = _SIMILARITY_RANGE.get(metric, (-math.inf, math.inf, ""))
    if not lo <= value <= hi:
        raise CLIError(f"--min-similarity must be in [{lo:g}, {hi:g}] for --metric {metric} "
                       f"({why}); got {value:g}.")


def _set_verbose(search, verbose):
    """Progress of a SemanticSearch and of its fitted index."""
    search.set_params(verbose=verbose)
    if hasattr(search.index_, "verbose"):
        search.index_.verbose = verbose


def run_graph(args):
    """``sksemantic graph``: the k-NN graph of an embeddings file, as a sparse ``.npz``."""
    import scipy.sparse as sp

    from ..graph import SemanticGraphTransformer

    opts = _options("n_neighbors", "metric", "mode", "min_similarity", "algorithm",
                    "target_recall")
    est = SemanticGraphTransformer(
        n_neighbors=args.n_neighbors, metric=args.metric, mode=args.mode,
        min_similarity=args.min_similarity, algorithm=args.algorithm,
        target_recall=args.target_recall, random_state=SEED, verbose=_verbose(args),
    )
    _check_params(est, opts)
    check_min_similarity(args.min_similarity, args.metric)
    out = Output(args.out, "--out", ".npz", inputs=[args.embeddings])
    X = read_embeddings(args.embeddings, "embeddings")
    with Step(f"{args.n_neighbors}-nearest-neighbour graph of {X.shape[0]:,} points"), \
            estimator_errors(opts, f"embeddings '{args.embeddings}'"):
        G = est.fit_transform(X)
    path = out.write(lambda fh: sp.save_npz(fh, G))
    status(f"graph of {X.shape[0]:,} points ({est.algorithm_}): {G.nnz:,} entries -> {path}")
    return 0


def run_dedup(args):
    """``sksemantic dedup``: a near-duplicate group label per row, as a ``.npy``."""
    from ..graph import SemanticDeduplicator

    opts = _options("min_similarity", "n_neighbors", "metric", "algorithm", "target_recall")
    est = SemanticDeduplicator(
        min_similarity=args.min_similarity, n_neighbors=args.n_neighbors, metric=args.metric,
        algorithm=args.algorithm, target_recall=args.target_recall, random_state=SEED,
        verbose=_verbose(args),
    )
    _check_params(est, opts)
    check_min_similarity(args.min_similarity, args.metric)
    out = Output(args.out, "--out", ".npy", inputs=[args.embeddings])
    X = read_embeddings(args.embeddings, "embeddings")
    with Step(f"near-duplicate groups of {X.shape[0]:,} items "
              f"({args.metric} similarity >= {args.min_similarity:g})"), \
            estimator_errors(opts, f"embeddings '{args.embeddings}'"):
        est.fit(X)
    path = out.write(lambda fh: np.save(fh, est.labels_))
    status(f"{X.shape[0]:,} items -> {est.n_groups_:,} groups; labels -> {path}")
    return 0


def run_ids(args):
    """``sksemantic ids``: unique semantic IDs, as strings (``.txt``) or codes (``.npy``)."""
    from ..ids import SemanticIdAssigner, codes_to_strings
    from ..quantization import RQKMeansEncoder

    opts = _options("n_levels", "n_clusters")
    encoder = RQKMeansEncoder(
        n_levels=args.n_levels, n_clusters=args.n_clusters, random_state=SEED,
        verbose=_verbose(args),
    )
    _check_params(encoder, opts)
    text = args.out.endswith(".txt")
    out = Output(args.out, "--out", None if text else ".npy", inputs=[args.embeddings])
    X = read_embeddings(args.embeddings, "embeddings")
    with Step(f"semantic IDs of {X.shape[0]:,} items ({args.n_levels} levels x "
              f"{args.n_clusters} codes)"), \
            estimator_errors(opts, f"embeddings '{args.embeddings}'"):
        encoder.fit(X)
        ids = SemanticIdAssigner(encoder, uniqueness="counter").assign(
            X, keys=list(range(len(X)))
        )
    if text:
        lines = "\n".join(codes_to_strings(ids, fmt=args.format)) + "\n"
        path = out.write(lambda fh: fh.write(lines.encode("utf-8")))
    else:
        path = out.write(lambda fh: np.save(fh, ids))
    status(f"{X.shape[0]:,} unique semantic IDs of width {ids.shape[1]} -> {path}")
    return 0


def _new_search(args, top_k=None):
    from ..search import SemanticSearch

    target = getattr(args, "target_recall", None)
    est = SemanticSearch(
        metric=args.metric or "cosine", algorithm=args.algorithm or "auto",
        target_recall=0.95 if target is None else target,
        random_state=SEED, verbose=_verbose(args),
        **({} if top_k is None else {"n_neighbors": top_k}),
    )
    _check_params(est, _options("metric", "algorithm", "target_recall",
                                n_neighbors="--top-k"))
    return est


def _fit_search(est, corpus, path):
    with Step(f"search index of {corpus.shape[0]:,} corpus items"), \
            estimator_errors({}, f"corpus '{path}'"):
        est.fit(corpus)
    status(f"    algorithm: {est.algorithm_}; {est.calibration_.describe()}")


def run_index(args):
    """``sksemantic index``: a SemanticSearch of the corpus, saved to a directory."""
    est = _new_search(args)
    out = check_index_dir(args.out, "--out")
    corpus = read_embeddings(args.corpus, "corpus")
    _fit_search(est, corpus, args.corpus)
    _set_verbose(est, 0)  # the saved index is quiet wherever it is loaded
    with Step(f"saving the index to {out}"):
        try:
            path = est.save(out)
        except OSError as exc:
            raise CLIError(f"cannot write --out '{out}': {exc}") from None
    status(f"index of {corpus.shape[0]:,} items ({est.algorithm_}) -> {path}")
    return 0


def _load_search(path, verbose):
    from ..search import SemanticSearch

    try:
        est = SemanticSearch.load(path)
    except FileNotFoundError:
        raise CLIError(f"--index '{path}' does not hold a saved index (written by "
                       "'sksemantic index'): no such directory or index file.") from None
    except Exception as exc:
        raise CLIError(f"--index '{path}' cannot be read as a saved index: "
                       f"{type(exc).__name__}: {exc}") from None
    _set_verbose(est, verbose)
    return est


def run_search(args):
    """``sksemantic search``: top-k results per query, on stdout or in an ``.npz``."""
    if args.index is not None:
        if len(args.inputs) != 1:
            raise CLIError("with --index, give only the queries file (the corpus is in the "
                           f"index); got {len(args.inputs)} files.")
        for option in ("metric", "algorithm", "target_recall"):
            if getattr(args, option) is not None:
                raise CLIError(f"--{option} applies when the index is built; the index in "
                               f"--index '{args.index}' keeps the one it was built with.")
        corpus_path, queries_path = None, args.inputs[0]
    else:
        if len(args.inputs) != 2:
            raise CLIError("give the corpus and the queries files (or --index DIR and the "
                           f"queries file); got {len(args.inputs)} file(s).")
        corpus_path, queries_path = args.inputs
    est = _new_search(args, top_k=args.top_k)  # validates --top-k (and the build options)
    inputs = [p for p in (corpus_path, queries_path) if p is not None]
    out = Output(args.out, "--out", ".npz", inputs=inputs) if args.out is not None else None
    if args.index is not None:
        est = _load_search(args.index, _verbose(args))  # memory-mapped: nothing is read yet
        Q = read_embeddings(queries_path, "queries")
        check_same_width(Q, est.n_features_in_, f"the index in '{args.index}'")
    else:
        corpus = read_embeddings(corpus_path, "corpus")
        Q = read_embeddings(queries_path, "queries")
        check_same_width(Q, corpus.shape[1], f"corpus '{corpus_path}'")
        _fit_search(est, corpus, corpus_path)
    with Step(f"top-{args.top_k} search of {Q.shape[0]:,} queries"), \
            estimator_errors({}, f"queries '{queries_path}'"):
        results = est.search(Q, top_k=args.top_k)
    if out is None:
        for qi, hits in enumerate(results):
            report(f"{qi} " + " ".join(f"{h['corpus_id']}:{h['score']:.4f}" for h in hits))
        return 0
    ids = np.array([[h["corpus_id"] for h in hits] for hits in results], dtype=np.int64)
    scores = np.array([[h["score"] for h in hits] for hits in results], dtype=np.float32)
    path = out.write(lambda fh: np.savez(fh, ids=ids, scores=scores))
    status(f"{Q.shape[0]:,} queries x {ids.shape[1]} results (arrays 'ids', 'scores') -> {path}")
    return 0
