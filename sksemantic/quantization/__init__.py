"""Residual quantisation: embeddings to integer codes (semantic IDs) and back.

:class:`RQKMeansEncoder` learns its codebooks by k-means on residuals;
:class:`RQVAEEncoder` learns an encoder, codebooks and a decoder (RQ-VAE, torch);
:class:`BaseResidualEncoder` is the shared front (``transform`` -> codes,
``inverse_transform``, ``score``, feature names, ID strings) that every residual encoder
subclasses.

:class:`RQVAEEncoder` needs the ``torch`` extra and is loaded on first access, so that
importing :mod:`sksemantic.quantization` never imports torch.
"""

from importlib.util import find_spec as _find_spec

from ._base import BaseResidualEncoder
from ._rqkmeans import RQKMeansEncoder

_LAZY = {"RQVAEEncoder": "._rqvae"}
# Listed for `import *` only where the extra is installed (checked without importing it),
# so that a star import never fails on a machine without torch.
def _installed(name):
    try:
        return _find_spec(name) is not None
    except (ImportError, ValueError):
        return False


_HAS_TORCH = _installed("torch") and _installed("skorch")

__all__ = ["BaseResidualEncoder", "RQKMeansEncoder"] + (["RQVAEEncoder"] if _HAS_TORCH else [])


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module = importlib.import_module(_LAZY[name], __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__) | set(_LAZY))
