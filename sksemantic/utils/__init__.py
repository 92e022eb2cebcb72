"""Shared helpers: validation, devices, optional imports, progress reporting.

These serve sksemantic's own modules and are not part of its public API (they are not
in the API reference): their signatures may change without notice.
"""

from ._device import check_n_clusters_per_level, resolve_device
from ._optional import import_optional
from ._pages import (
    check_mapped,
    release_pages,
    reuse_freed_memory,
    row_scan,
    small_pages,
    take_rows,
)
from ._parallel import ParallelPool, blas_threads, effective_n_jobs, parallel_map, run_spans
from ._progress import Progress
from ._validation import check_int_codes, check_n_neighbors, check_query_count

__all__ = [
    "ParallelPool",
    "Progress",
    "blas_threads",
    "check_int_codes",
    "check_mapped",
    "check_n_clusters_per_level",
    "check_n_neighbors",
    "check_query_count",
    "effective_n_jobs",
    "import_optional",
    "parallel_map",
    "release_pages",
    "reuse_freed_memory",
    "small_pages",
    "row_scan",
    "resolve_device",
    "run_spans",
    "take_rows",
]
