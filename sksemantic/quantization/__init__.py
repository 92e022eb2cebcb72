"""Residual quantisers: embeddings to integer codes (semantic IDs).

:class:`RQVAEEncoder` needs the ``torch`` extra and is loaded on first access, so
that importing :mod:`sksemantic.quantization` never imports torch.
"""

_LAZY = {"RQVAEEncoder": "._rqvae"}

__all__ = ["RQVAEEncoder"]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module = importlib.import_module(_LAZY[name], __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
