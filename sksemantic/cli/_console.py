"""What the command line prints: results on stdout; steps, progress and errors on stderr."""

import re
import sys
import time

from ..utils._progress import write_line

__all__ = ["CLIError", "Step", "estimator_errors", "report", "status"]


class CLIError(Exception):
    """A problem with the command line or its files, reported as one line (exit status 2)."""


def report(msg):
    """A line of the result, on stdout."""
    write_line(msg, sys.stdout)


class _Status:
    quiet = False


def status(msg):
    """A step or summary line, on stderr with the progress lines (silent with ``--quiet``)."""
    if not _Status.quiet:
        write_line(msg)


def set_quiet(quiet):
    _Status.quiet = bool(quiet)


class Step:
    """Reports a finished step and its wall time as one line on stderr.

    Nothing is printed when the step starts, so that an error in it is the only line
    of a failed run; long steps report their own progress meanwhile.
    """

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        self.t = time.perf_counter()
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is None:
            status(f"... {self.name} ({time.perf_counter() - self.t:.1f} s)")


_PARAM_MESSAGE = re.compile(
    r"^The '(?P<param>\w+)' parameter of \w+ must be (?P<must>.*)\. Got (?P<got>.*) instead\.$",
    re.S,
)


class estimator_errors:
    """Turn an estimator's ValueError or TypeError into a one-line CLIError.

    The estimator's own validation writes the message; parameter names in it are
    replaced by the options that set them (``n_neighbors`` -> ``--n-neighbors``), and
    other messages are prefixed with ``context`` (e.g. the input file they concern).

    Parameters
    ----------
    options : dict
        Estimator parameter name -> command-line option.
    context : str, default=None
        Prefix for messages that name no parameter.
    """

    def __init__(self, options, context=None):
        self.options = options
        self.context = context

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None or not issubclass(exc_type, (ValueError, TypeError)):
            return False
        text = str(exc).strip()
        m = _PARAM_MESSAGE.match(text)
        if m and m["param"] in self.options:
            msg = f"{self.options[m['param']]} must be {m['must']}; got {m['got']}."
        else:
            named = False
            for param, option in self.options.items():
                text, n = re.subn(rf"(?<![\w-]){param}(?==)", option, text)
                named = named or n > 0
            msg = text if named or not self.context else f"{self.context}: {text}"
        raise CLIError(" ".join(msg.split())) from exc
