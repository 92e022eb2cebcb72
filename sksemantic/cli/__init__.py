"""The ``sksemantic`` command line (``sksemantic --help``); the demo lives in ``__main__``."""

from ._main import build_parser, main

__all__ = ["build_parser", "main"]
