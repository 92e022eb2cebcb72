"""scikit-learn's common estimator checks, run on every sksemantic estimator."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sksemantic.graph import SemanticDeduplicator, SemanticGraphTransformer
from sksemantic.quantization import RQKMeansEncoder
from sksemantic.search import SemanticSearch

try:  # RQVAEEncoder needs the torch extra; the other estimators do not.
    from sksemantic.quantization import RQVAEEncoder
except ImportError:  # pragma: no cover - depends on the environment
    RQVAEEncoder = None

try:  # DaskEncoder needs the dask extra.
    from sksemantic.dask import DaskEncoder
except ImportError:  # pragma: no cover - depends on the environment
    DaskEncoder = None

from tests._helpers import HAS_HNSWLIB


def _estimators():
    # Small, fast settings; the checks use datasets of about 20-30 rows.
    yield SemanticGraphTransformer(n_neighbors=3)
    yield SemanticGraphTransformer(n_neighbors=3, algorithm="ivf", random_state=0)
    yield SemanticGraphTransformer(n_neighbors=3, algorithm="annoy", random_state=0)
    if HAS_HNSWLIB:
        yield SemanticGraphTransformer(n_neighbors=3, algorithm="hnsw", random_state=0)
    yield SemanticGraphTransformer(n_neighbors=3, mode="connectivity", metric="euclidean")
    yield SemanticDeduplicator(n_neighbors=3)
    yield RQKMeansEncoder(n_levels=2, n_clusters=3, random_state=0)
    yield RQKMeansEncoder(n_levels=2, n_clusters=[4, 2], balanced=True, random_state=0)
    # A projected start: the checks' data has more than 2 features in most checks.
    yield RQKMeansEncoder(n_levels=2, n_clusters=3, pca_components=2, random_state=0)
    yield SemanticSearch(n_neighbors=3)
    yield SemanticSearch(n_neighbors=3, algorithm="ivf", random_state=0)
    yield SemanticSearch(n_neighbors=3, algorithm="annoy", random_state=0)
    if HAS_HNSWLIB:
        yield SemanticSearch(n_neighbors=3, algorithm="hnsw", random_state=0)
    if DaskEncoder is not None:
        # On NumPy input (a dask array's path is the same estimator, block by block).
        yield DaskEncoder(RQKMeansEncoder(n_levels=2, n_clusters=3, random_state=0),
                          random_state=0)
    if RQVAEEncoder is not None:
        yield RQVAEEncoder(
            n_levels=2, n_clusters=4, hidden_dims=(8,), latent_dim=4, max_epochs=2,
            batch_size=16, random_state=0,
        )


EXPECTED_FAILED_CHECKS = {
    "SemanticGraphTransformer": {
        # As for KNeighborsTransformer: a row's columns index the fitted samples, so
        # shuffling the queries changes which rows are compared; values agree only up
        # to float32 round-off of differently blocked matrix products.
        "check_methods_sample_order_invariance": "output columns index the fit samples",
    },
}


def _expected_failed_checks(estimator):
    checks = dict(EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {}))
    if getattr(estimator, "algorithm", None) != "ivf":
        # Exact, annoy and HNSW searches pass it (candidates are re-scored one query
        # at a time); only IVF's grouped products round differently.
        checks.pop("check_methods_sample_order_invariance", None)
    return checks


@parametrize_with_checks(list(_estimators()), expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
