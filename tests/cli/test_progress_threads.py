"""Progress lines stay whole, and counts exact, when worker threads report at once."""

import re
import sys
import threading

from sksemantic.utils import Progress


class SlowStream:
    """A stream that writes character by character, yielding the GIL in between, as a
    pipe can split a write: lines written without a lock interleave on it."""

    def __init__(self):
        self.chars = []

    def write(self, text):
        for ch in text:
            self.chars.append(ch)
            threading.Event().wait(0)  # let another thread run mid-line

    def flush(self):
        pass

    def text(self):
        return "".join(self.chars)


def test_lines_of_worker_threads_do_not_merge(monkeypatch):
    stream = SlowStream()
    monkeypatch.setattr(sys, "stderr", stream)
    n_threads, per_thread = 6, 40
    total = n_threads * per_thread
    progress = Progress(total, "IVF search", verbose=1, n_updates=total)
    start = threading.Barrier(n_threads)

    def work():
        start.wait()
        for _ in range(per_thread):
            progress.update()

    threads = [threading.Thread(target=work) for _ in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = stream.text().splitlines()
    pattern = re.compile(rf"\[sksemantic\] IVF search: (\d+)/{total} \(\d+\.\ds\)")
    counts = []
    for line in lines:
        m = pattern.fullmatch(line)
        assert m, f"merged or broken line: {line!r}"
        counts.append(int(m[1]))
    assert sorted(counts) == list(range(1, total + 1))  # every count once: none lost
    assert stream.text().endswith("\n")


def test_silent_without_verbose(capsys):
    progress = Progress(5, "x", verbose=0)
    for _ in range(5):
        progress.update()
    assert capsys.readouterr().err == ""


def test_few_lines_for_many_steps(capsys):
    progress = Progress(1000, "k-means", verbose=1, n_updates=10)
    for _ in range(1000):
        progress.update()
    lines = capsys.readouterr().err.splitlines()
    assert 5 <= len(lines) <= 11
    assert lines[-1].startswith("[sksemantic] k-means: 1000/1000")
