"""sksemantic on a dask cluster: encoders, neighbour graphs and search beyond one machine.

- :class:`DaskEncoder` fits an encoder (:class:`~sksemantic.quantization.RQKMeansEncoder`,
  :class:`~sksemantic.quantization.RQVAEEncoder`) on a random sample of a dask array
  and encodes the array block by block, lazily;
- :class:`ShardedSemanticSearch` keeps one :class:`~sksemantic.search.SemanticSearch`
  per shard of the corpus in the workers' memory and merges their answers;
- :func:`kneighbors_graph` computes the graph
  :class:`~sksemantic.graph.SemanticGraphTransformer` gives, shard by shard.

Why a separate module of wrappers rather than dask branches inside every estimator (as
dask-ml does with ``ParallelPostFit`` and ``Incremental``): scikit-learn's input
validation turns any array into a NumPy array, so an estimator handed a dask array
would pull it into local memory; and the core estimators must not depend on dask.
The wrappers call the estimators' own ``fit``, ``transform`` and index searches on
NumPy blocks, so results are those of the local estimators.

Needs the ``dask`` extra: ``pip install 'sksemantic[dask]'`` (dask and distributed).
"""

from ._common import import_dask

import_dask()  # an ImportError naming the extra, before anything else fails

from ._encoders import DaskEncoder, sample_rows  # noqa: E402
from ._shards import ShardedSemanticSearch, kneighbors_graph, merge_shard_answers  # noqa: E402

__all__ = [
    "DaskEncoder",
    "ShardedSemanticSearch",
    "kneighbors_graph",
    "merge_shard_answers",
    "sample_rows",
]
