"""Progress reporting for long loops, driven by an estimator's ``verbose`` parameter."""

import sys
import time

__all__ = ["Progress"]


class Progress:
    """Minimal progress reporter: prints ``label: done/total (elapsed)`` to stderr.

    It is silent when ``verbose`` is falsy and prints at most about ``n_updates``
    lines, so that it never floods a log.

    Parameters
    ----------
    total : int
        Number of steps.
    label : str
        What is being done.
    verbose : int or bool
        Print when truthy.
    n_updates : int, default=10
        Approximate number of lines to print.
    """

    def __init__(self, total, label, verbose, n_updates=10):
        self.total = max(int(total), 1)
        self.label = label
        self.verbose = verbose
        self.every = max(self.total // max(n_updates, 1), 1)
        self.start = time.perf_counter()
        self.done = 0

    def update(self, n=1):
        self.done += n
        if self.verbose and (self.done % self.every < n or self.done >= self.total):
            elapsed = time.perf_counter() - self.start
            print(
                f"[sksemantic] {self.label}: {min(self.done, self.total)}/{self.total} "
                f"({elapsed:.1f}s)",
                file=sys.stderr,
                flush=True,
            )
