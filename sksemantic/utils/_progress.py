"""Progress reporting for long loops, driven by an estimator's ``verbose`` parameter."""

import sys
import threading
import time

__all__ = ["Progress", "write_line"]

# One lock for every writer, so that lines from worker threads (and from several
# reporters) never interleave.
_LOCK = threading.RLock()


def write_line(text, stream=None):
    """Write ``text`` as one whole line to ``stream`` (stderr when None), under a lock.

    The line goes out in a single ``write`` call and is flushed at once, so that lines
    written by concurrent threads stay whole.

    Parameters
    ----------
    text : str
        The line, without its newline.
    stream : file-like, default=None
        Where to write; ``sys.stderr`` (looked up at call time) when None.
    """
    with _LOCK:
        out = sys.stderr if stream is None else stream
        out.write(f"{text}\n")
        out.flush()


class Progress:
    """Minimal progress reporter: prints ``label: done/total (elapsed)`` to stderr.

    It is silent when ``verbose`` is falsy and prints at most about ``n_updates``
    lines, so that it never floods a log. :meth:`update` may be called from several
    threads at once: the count is kept under a lock and each line is written whole.

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
        with _LOCK:
            self.done += n
            if self.verbose and (self.done % self.every < n or self.done >= self.total):
                elapsed = time.perf_counter() - self.start
                write_line(
                    f"[sksemantic] {self.label}: {min(self.done, self.total)}/{self.total} "
                    f"({elapsed:.1f}s)"
                )
