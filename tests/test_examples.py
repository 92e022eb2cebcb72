"""Every script in examples/ runs to the end and writes its picture.

The examples are the documentation users copy from; one of them had stopped running
(it saved a search index into a fresh temporary directory, which ``save`` refused) and
nothing noticed. They run on the shipped corpus only, so they run everywhere.
"""

import pytest

from tests._helpers import ROOT, run_python

EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


@pytest.mark.slow
@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script, tmp_path):
    # Run in an empty directory (the pictures land there), with this checkout's package.
    run_python(script, cwd=tmp_path, timeout=900)
    assert list(tmp_path.glob("*.png")), "the example wrote no picture"


def test_there_are_examples():
    assert len(EXAMPLES) >= 5
