"""Lazy imports of optional dependencies with an error that says what to install."""

import importlib

__all__ = ["import_optional"]

_EXTRAS = {
    "torch": "torch",
    "skorch": "torch",
    "sentence_transformers": "text",
    "pandas": "pandas",
    "matplotlib": "plot",
    "hnswlib": "hnsw",
    "dask": "dask",
    "distributed": "dask",
}


def import_optional(name, *, purpose=None):
    """Import module ``name`` or raise an ImportError naming the extra that provides it.

    Parameters
    ----------
    name : str
        Module name, e.g. ``"torch"``.
    purpose : str, default=None
        What the module is needed for, used in the message.

    Returns
    -------
    module : module
    """
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        extra = _EXTRAS.get(name.split(".")[0])
        what = f" for {purpose}" if purpose else ""
        hint = (
            f"pip install 'sksemantic[{extra}]'" if extra else f"pip install {name}"
        )
        if extra == "torch":
            hint = "pip install torch (a CPU build is enough) and then " + hint
        raise ImportError(f"{name} is required{what} but is not installed: {hint}.") from exc
