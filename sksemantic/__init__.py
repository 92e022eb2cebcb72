"""sksemantic: scikit-learn estimators that turn embeddings into structure."""

__version__ = "0.1.0"

from .quantization import _HAS_TORCH, BaseResidualEncoder, RQKMeansEncoder  # noqa: E402

__all__ = ["__version__", "BaseResidualEncoder", "RQKMeansEncoder"] + (
    ["RQVAEEncoder"] if _HAS_TORCH else []
)

# Names whose import needs an optional extra (torch): resolved on first access, so that
# importing sksemantic never imports torch.
_LAZY = {"RQVAEEncoder": "sksemantic.quantization"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
