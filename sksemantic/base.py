"""Behaviour shared by every sksemantic estimator."""

import warnings

__all__ = ["VersionedPickleMixin"]

# The published documentation; the "?" of an estimator's HTML repr opens its API page there.
DOCS_URL = "https://sksemantic.readthedocs.io/en/stable/"


class VersionedPickleMixin:
    """Stamp pickles with the sksemantic version and warn when loading another version.

    scikit-learn does the same for its own version (``_sklearn_version``); fitted
    sksemantic state (indexes, codebooks) can change format between releases too.
    It also points the HTML repr's documentation link at sksemantic's API pages.
    """

    _doc_link_module = "sksemantic"
    _doc_link_template = DOCS_URL + "api/generated/{estimator_module}.{estimator_name}.html"

    def __getstate__(self):
        # A copy: BaseEstimator returns the live __dict__ for non-sklearn classes, and
        # stamping it would leave _sksemantic_version on the pickled estimator.
        state = dict(super().__getstate__())
        from . import __version__

        state["_sksemantic_version"] = __version__
        return state

    def __setstate__(self, state):
        from . import __version__

        saved = state.pop("_sksemantic_version", None)
        if saved is not None and saved != __version__:
            warnings.warn(
                f"Loading {type(self).__name__} pickled with sksemantic {saved} under "
                f"{__version__}; results may differ or the object may not work.",
                UserWarning,
                stacklevel=2,
            )
        super().__setstate__(state)
