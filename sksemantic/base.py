"""Behaviour shared by every sksemantic estimator."""

import warnings

__all__ = ["VersionedPickleMixin"]


class VersionedPickleMixin:
    """Stamp pickles with the sksemantic version and warn when loading another version.

    scikit-learn does the same for its own version (``_sklearn_version``); fitted
    sksemantic state (indexes, codebooks) can change format between releases too.
    """

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
