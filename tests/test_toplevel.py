"""The main estimators import from the top level; the heavy extras load only when used."""

import pytest

import sksemantic
from sksemantic.graph import SemanticDeduplicator, SemanticGraphTransformer
from sksemantic.ids import SemanticIdAssigner
from sksemantic.quantization import RQKMeansEncoder
from sksemantic.search import SemanticSearch, TextEmbedder
from tests._helpers import run_python

_MAIN = ["SemanticGraphTransformer", "SemanticDeduplicator", "SemanticSearch",
         "RQKMeansEncoder", "RQVAEEncoder", "SemanticIdAssigner", "TextEmbedder"]

_SCRIPT = """
import sys
import sksemantic
from sksemantic import SemanticGraphTransformer, SemanticSearch, TextEmbedder
heavy = ("torch", "skorch", "sentence_transformers", "transformers")
print(sorted(m for m in heavy if m in sys.modules))
"""


def test_import_loads_no_torch_nor_sentence_transformers():
    out = run_python("-c", _SCRIPT).stdout
    assert out.strip() == "[]"


def test_main_estimators_from_top_level():
    from sksemantic import SemanticGraphTransformer as Graph

    assert Graph is SemanticGraphTransformer
    assert sksemantic.SemanticDeduplicator is SemanticDeduplicator
    assert sksemantic.SemanticSearch is SemanticSearch
    assert sksemantic.RQKMeansEncoder is RQKMeansEncoder
    assert sksemantic.SemanticIdAssigner is SemanticIdAssigner
    assert sksemantic.TextEmbedder is TextEmbedder
    assert set(_MAIN) <= set(dir(sksemantic))
    assert set(_MAIN) - {"RQVAEEncoder"} <= set(sksemantic.__all__)
    for name in set(sksemantic.__all__) - {"RQVAEEncoder"}:  # what `import *` binds
        assert getattr(sksemantic, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        sksemantic.Nope  # noqa: B018


def test_rqvae_from_top_level():
    pytest.importorskip("torch")
    pytest.importorskip("skorch")
    from sksemantic.quantization import RQVAEEncoder

    assert sksemantic.RQVAEEncoder is RQVAEEncoder
    assert "RQVAEEncoder" in sksemantic.__all__
