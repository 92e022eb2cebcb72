"""sksemantic: scikit-learn estimators that turn embeddings into structure."""

__version__ = "0.1.0"

from .quantization import BaseResidualEncoder, RQKMeansEncoder  # noqa: E402

__all__ = ["__version__", "BaseResidualEncoder", "RQKMeansEncoder"]
