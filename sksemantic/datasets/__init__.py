"""Small real corpora shipped with sksemantic, with precomputed embeddings.

No model and no network are needed: the texts come with their all-MiniLM-L6-v2
embeddings. See ``data/README.md`` in this package for provenance and licences.
"""

from ._base import get_data_path, load_debian_packages, load_wordnet_queries

__all__ = ["get_data_path", "load_debian_packages", "load_wordnet_queries"]
