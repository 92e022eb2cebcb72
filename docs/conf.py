"""Sphinx configuration for sksemantic.

Build (from the repository root; -W turns warnings into errors)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

import os
import re
import sys

sys.path.insert(0, os.path.abspath(".."))

import sksemantic  # noqa: E402

project = "sksemantic"
author = "sksemantic developers"
copyright = "2026, sksemantic developers"
release = sksemantic.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
]

autosummary_generate = True
autodoc_default_options = {}
# numpydoc renders the class docstrings; the methods get their own autosummary pages.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks = set()

templates_path = ["_templates"]
exclude_patterns = ["_build"]
default_role = "obj"
suppress_warnings = ["ref.obj"]

try:
    import pydata_sphinx_theme  # noqa: F401

    html_theme = "pydata_sphinx_theme"
    html_theme_options = {"navigation_with_keys": False}
except ImportError:  # pragma: no cover - the docs extra installs it
    html_theme = "alabaster"
html_title = f"sksemantic {release}"
html_static_path = []


# Fitted-attribute names such as ``n_samples_fit_`` inside shapes ("of shape
# (n_queries, n_samples_fit_)") read as reST link targets; show them as literals, as
# scikit-learn's docstrings do by hand.
_TRAILING_UNDERSCORE = re.compile(r"(?<![`\\])\b([A-Za-z]\w*_)(?=[,)])")


def _escape_shapes(app, what, name, obj, options, lines):
    lines[:] = [_TRAILING_UNDERSCORE.sub(r"``\1``", line) for line in lines]


def setup(app):
    # Before numpydoc (priority 500) parses the sections.
    app.connect("autodoc-process-docstring", _escape_shapes, priority=100)
