"""sksemantic: scikit-learn estimators that turn embeddings into structure.

The main estimators are importable from here (``from sksemantic import
SemanticGraphTransformer``) as well as from their subpackages. :class:`RQVAEEncoder`
(``torch`` extra) and :class:`TextEmbedder` (``text`` extra) load on first access, so
that ``import sksemantic`` imports neither torch nor sentence-transformers.
"""

__version__ = "0.1.0"

from .graph import SemanticDeduplicator, SemanticGraphTransformer  # noqa: E402
from .ids import SemanticIdAssigner  # noqa: E402
from .quantization import _HAS_TORCH, BaseResidualEncoder, RQKMeansEncoder  # noqa: E402
from .search import SemanticSearch  # noqa: E402

# Names resolved on first access, with the module that defines them.
_LAZY = {"RQVAEEncoder": "sksemantic.quantization", "TextEmbedder": "sksemantic.search"}


# TextEmbedder imports without its extra (sentence-transformers loads at fit), so it is
# always listed; RQVAEEncoder only where torch is installed (checked without importing
# it), so that a star import never fails for want of an extra.
__all__ = [
    "__version__",
    "BaseResidualEncoder",
    "RQKMeansEncoder",
    "SemanticDeduplicator",
    "SemanticGraphTransformer",
    "SemanticIdAssigner",
    "SemanticSearch",
    "TextEmbedder",
] + (["RQVAEEncoder"] if _HAS_TORCH else [])


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__) | set(_LAZY))
