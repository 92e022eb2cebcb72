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

The building blocks those estimators share are public too: metric conversions
(:func:`prepare`, :func:`scores_to_distances`), top-k merges (:func:`merge_candidates`),
search at a calibrated setting (:func:`search_with`) and persistence (:func:`save_search`).
"""

from ._annoy import AnnoyIndex
from ._base import BaseIndex, drop_rows_self, tie_aware_hits
from ._brute import BruteIndex, exact_search_cost
from ._calibrate import (
    N_CALIBRATION,
    Z_MARGIN,
    RecallCalibration,
    calibrate_index,
    choose_setting,
    search_with,
    setting_costs,
)
from ._estimator import INDEX_PARAMETERS_DOC, BaseIndexedEstimator, fill_index_doc
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
from ._metric import (
    METRICS,
    pairwise_scores,
    prepare,
    scores_to_distances,
    scores_to_similarities,
)
from ._persist import load_index, load_search, save_index, save_search
from ._topk import merge_candidates, put_self_first

__all__ = [
    "N_CALIBRATION",
    "ALGORITHMS",
    "INDEX_PARAMETER_CONSTRAINTS",
    "AUTO_BRUTE_MAX_SAMPLES",
    "AnnoyIndex",
    "BaseIndex",
    "BaseIndexedEstimator",
    "INDEX_PARAMETERS_DOC",
    "RecallCalibration",
    "calibrate_index",
    "choose_setting",
    "setting_costs",
    "exact_search_cost",
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
    # Building blocks shared by the estimators.
    "Z_MARGIN",
    "drop_rows_self",
    "fill_index_doc",
    "load_search",
    "merge_candidates",
    "pairwise_scores",
    "prepare",
    "put_self_first",
    "save_search",
    "scores_to_distances",
    "scores_to_similarities",
    "search_with",
    "tie_aware_hits",
]
