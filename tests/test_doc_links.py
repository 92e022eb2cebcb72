"""The "?" of an estimator's HTML repr opens that estimator's page of our API reference."""

import importlib
import re
from pathlib import Path

import pytest
from sklearn.base import BaseEstimator

from sksemantic.base import DOCS_URL
from sksemantic.graph import SemanticDeduplicator, SemanticGraphTransformer
from sksemantic.quantization import RQKMeansEncoder
from sksemantic.search import SemanticSearch, TextEmbedder

API_RST = Path(__file__).resolve().parents[1] / "docs" / "api.rst"

ESTIMATORS = [
    ("sksemantic.graph", SemanticGraphTransformer),
    ("sksemantic.graph", SemanticDeduplicator),
    ("sksemantic.quantization", RQKMeansEncoder),
    ("sksemantic.search", SemanticSearch),
    ("sksemantic.search", TextEmbedder),
]
try:
    from sksemantic.dask import DaskEncoder, ShardedSemanticSearch

    ESTIMATORS += [("sksemantic.dask", DaskEncoder), ("sksemantic.dask", ShardedSemanticSearch)]
except ImportError:  # the dask extra is not installed
    pass
try:
    from sksemantic.quantization import RQVAEEncoder

    ESTIMATORS.append(("sksemantic.quantization", RQVAEEncoder))
except ImportError:  # the torch extra is not installed
    pass


def documented_names():
    """``module.Name`` of every object listed in docs/api.rst (the pages that get built)."""
    names, module = set(), None
    for line in API_RST.read_text().splitlines():
        if m := re.match(r"\.\. currentmodule:: (\S+)", line):
            module = m.group(1)
        elif module and re.fullmatch(r"   [A-Za-z_]\w*", line):
            names.add(f"{module}.{line.strip()}")
    return names


@pytest.mark.parametrize("module, cls", ESTIMATORS, ids=lambda x: getattr(x, "__name__", x))
def test_doc_link_points_at_the_api_page(module, cls):
    url = cls()._get_doc_link()
    assert url == f"{DOCS_URL}api/generated/{module}.{cls.__name__}.html"
    assert f"{module}.{cls.__name__}" in documented_names()


def test_html_repr_carries_the_link():
    html = SemanticGraphTransformer()._repr_html_()
    assert f"{DOCS_URL}api/generated/sksemantic.graph.SemanticGraphTransformer.html" in html


def test_every_documented_estimator_is_tested():
    tested = {f"{m}.{c.__name__}" for m, c in ESTIMATORS}
    for name in documented_names():
        module, _, attr = name.rpartition(".")
        try:
            obj = getattr(importlib.import_module(module), attr)
        except (AttributeError, ImportError):  # behind an optional extra
            continue
        is_base = attr.startswith("Base")  # a base class to build estimators on
        if isinstance(obj, type) and issubclass(obj, BaseEstimator) and not is_base:
            assert name in tested
