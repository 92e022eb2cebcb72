"""The neighbour-index layer shared by the graph transformer and semantic search.

One interface, five backends:

- :class:`BruteIndex`: exact, blocked BLAS products with a running-threshold partial sort;
- :class:`IVFIndex`: approximate, k-means inverted lists probed by BLAS products;
- :class:`IVFRQIndex`: IVF lists scanned through residual codes (a few bytes per point
  in memory, the full vectors on disk), the best candidates re-scored exactly;
- :class:`AnnoyIndex`: approximate, annoy's random-projection forest;
- :class:`HNSWIndex`: approximate, hnswlib's navigable small-world graph (an optional
  extra: ``pip install 'sksemantic[hnsw]'``).

:func:`make_index` builds one from an algorithm name, resolving ``"auto"``.
:class:`BaseIndexedEstimator` is the base of the estimators that own an index, and holds
the recall contract (:func:`calibrate_index`, :class:`RecallCalibration`).
"""

from ._annoy import AnnoyIndex
from ._base import BaseIndex
from ._brute import BruteIndex
from ._calibrate import RecallCalibration, calibrate_index
from ._estimator import INDEX_PARAMETERS_DOC, BaseIndexedEstimator
from ._factory import (
    ALGORITHMS,
    AUTO_BRUTE_MAX_SAMPLES,
    INDEX_PARAMETER_CONSTRAINTS,
    index_seed,
    make_index,
    resolve_algorithm,
)
from ._hnsw import HNSWIndex, default_ef_search
from ._ivf import IVFIndex, default_n_lists, default_n_probe
from ._ivf_rq import IVFRQIndex
from ._metric import METRICS
from ._persist import load_index, save_index

__all__ = [
    "ALGORITHMS",
    "INDEX_PARAMETER_CONSTRAINTS",
    "AUTO_BRUTE_MAX_SAMPLES",
    "AnnoyIndex",
    "BaseIndex",
    "BaseIndexedEstimator",
    "INDEX_PARAMETERS_DOC",
    "RecallCalibration",
    "calibrate_index",
    "BruteIndex",
    "HNSWIndex",
    "IVFIndex",
    "IVFRQIndex",
    "METRICS",
    "default_ef_search",
    "default_n_lists",
    "default_n_probe",
    "index_seed",
    "load_index",
    "make_index",
    "resolve_algorithm",
    "save_index",
]
