"""sksemantic."""
__version__ = "0.1.0"

# Names whose import needs an optional extra (torch): resolved on first access.
_LAZY = {"RQVAEEncoder": "sksemantic.quantization"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
