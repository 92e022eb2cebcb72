"""Sphinx configuration for sksemantic.

Build (from the repository root; -W turns warnings into errors)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

The build runs every ``examples/plot_*.py`` (sphinx-gallery) and validates the public
docstrings (numpydoc); it needs no network.
"""

import importlib
import inspect
import logging
import os
import re
import sys

sys.path.insert(0, os.path.abspath(".."))

import sksemantic  # noqa: E402
from sksemantic.base import DOCS_URL  # noqa: E402

project = "sksemantic"
author = "sksemantic developers"
copyright = "2026, sksemantic developers"
release = sksemantic.__version__
version = release
html_baseurl = DOCS_URL

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

autosummary_generate = True
autodoc_default_options = {}


def _own_methods(cls):
    """Public methods of a class, its sksemantic bases' included (scikit-learn's are not)."""
    found = []
    for klass in cls.__mro__:
        if klass.__module__.split(".")[0] != "sksemantic":
            continue
        for key, value in vars(klass).items():
            if key.startswith("_") or key in found:
                continue
            if inspect.isfunction(value) or isinstance(value, (classmethod, staticmethod)):
                found.append(key)
    return sorted(found)


def _public_classes():
    for module_name in ("graph", "quantization", "ids", "search", "neighbors", "dask"):
        module = importlib.import_module(f"sksemantic.{module_name}")
        for name in module.__all__:
            try:
                obj = getattr(module, name)
            except ImportError:  # behind an optional extra
                continue
            if inspect.isclass(obj):
                yield f"sksemantic.{module_name}.{name}", obj


# The class template lists ``own_methods[fullname]``, one page per method.
autosummary_context = {
    "own_methods": {name: _own_methods(cls) for name, cls in _public_classes()}
}
# numpydoc renders the class docstrings; the methods get their own autosummary pages.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
# Every public docstring is checked during the build (a failure is a warning, so -W fails):
# GL08 no docstring, PR01 an undocumented parameter, PR07 one with no description,
# RT01 no Returns section.
numpydoc_validation_checks = {"GL08", "PR01", "PR07", "RT01"}
# Methods inherited from scikit-learn and Python are theirs to document.
numpydoc_validation_exclude = {
    r"\.__init__$",
    r"\.get_params$",
    r"\.set_params$",
    r"\.set_output$",
    r"\.get_metadata_routing$",
    r"\.set_\w+_request$",
    r"Result\.(count|index)$",  # tuple methods of the named result types
}

templates_path = ["_templates"]
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.md5"]
default_role = "obj"
suppress_warnings = ["ref.obj"]

# -- links to the libraries we build on ----------------------------------------------
# Offline (CI has no network) the inventories cannot be fetched: ``setup`` logs that
# failure as information instead of a warning that -W would fail on; online, links work.
intersphinx_mapping = {
    "python": ("https://docs.python.org/3/", None),
    "numpy": ("https://numpy.org/doc/stable/", None),
    "scipy": ("https://docs.scipy.org/doc/scipy/", None),
    "sklearn": ("https://scikit-learn.org/stable/", None),
    "networkx": ("https://networkx.org/documentation/stable/", None),
    "torch": ("https://docs.pytorch.org/docs/stable/", None),
    "pandas": ("https://pandas.pydata.org/docs/", None),
    "matplotlib": ("https://matplotlib.org/stable/", None),
}
intersphinx_timeout = 5

# -- the example gallery ----------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",  # generated, git-ignored
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "abort_on_example_error": True,
    # "Examples using this class" under each API page, and code linked to the API.
    "doc_module": ("sksemantic",),
    "backreferences_dir": "api/generated/backreferences",
    "inspect_global_variables": False,
    "remove_config_comments": True,
    "download_all_examples": False,
    "show_memory": False,
    "write_computation_times": True,
    # The examples use the shipped corpora only (sksemantic.datasets): no network.
    "reset_modules": ("matplotlib",),
}

try:
    import pydata_sphinx_theme  # noqa: F401

    html_theme = "pydata_sphinx_theme"
    html_theme_options = {"navigation_with_keys": False}
except ImportError:  # pragma: no cover - the docs extra installs it
    html_theme = "alabaster"
html_title = f"sksemantic {release}"
html_static_path = ["_static"]
html_css_files = ["css/sksemantic.css"]


# Fitted-attribute names such as ``n_samples_fit_`` inside shapes ("of shape
# (n_queries, n_samples_fit_)") read as reST link targets; show them as literals, as
# scikit-learn's docstrings do by hand.
_TRAILING_UNDERSCORE = re.compile(r"(?<![`\\])\b([A-Za-z]\w*_)(?=[,)])")


def _escape_shapes(app, what, name, obj, options, lines):
    # Only outside existing ``literals`` (the odd pieces of a split on ``).
    lines[:] = [
        "``".join(part if i % 2 else _TRAILING_UNDERSCORE.sub(r"``\1``", part)
                  for i, part in enumerate(line.split("``")))
        for line in lines
    ]


class _UnreachableInventoriesAreInfo(logging.Filter):
    def filter(self, record):
        if "failed to reach any of the inventories" in str(record.msg):
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def setup(app):
    # Before numpydoc (priority 500) parses the sections.
    app.connect("autodoc-process-docstring", _escape_shapes, priority=100)
    logging.getLogger("sphinx.sphinx.ext.intersphinx").addFilter(
        _UnreachableInventoriesAreInfo()
    )
