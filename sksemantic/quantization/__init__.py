"""Residual quantisation: embeddings to integer codes (semantic IDs) and back.

:class:`RQKMeansEncoder` learns its codebooks by k-means on residuals;
:class:`RQVAEEncoder` learns an encoder, codebooks and a decoder (RQ-VAE, torch);
:class:`BaseResidualEncoder` is the shared front (``transform`` -> codes,
``inverse_transform``, ``score``, feature names, ID strings) that every residual encoder
subclasses.

:class:`RQVAEEncoder` needs the ``torch`` extra and is loaded on first access, so that
importing :mod:`sksemantic.quantization` never imports torch.
"""

from ._base import BaseResidualEncoder
from ._rqkmeans import RQKMeansEncoder

__all__ = ["BaseResidualEncoder", "RQKMeansEncoder", "RQVAEEncoder"]

_LAZY = {"RQVAEEncoder": "._rqvae"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module = importlib.import_module(_LAZY[name], __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
