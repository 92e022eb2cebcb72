"""The demo, end to end; the other commands are tested in tests/cli/."""

import pytest

from sksemantic.__main__ import main


def test_demo_reports_on_stdout_and_steps_on_stderr(capsys):
    assert main(["demo", "--out", ""]) == 0
    out, err = capsys.readouterr()
    for result in ("communities, modularity", "distinct items", "query:",
                   "every ID is unique (True)"):
        assert result in out
    for step in ("similarity graph", "communities", "near-duplicate groups", "semantic IDs",
                 "search index"):
        assert any(line.startswith(f"... {step}") for line in err.splitlines()), step
    assert "... " not in out and "done in" in err


@pytest.mark.slow
def test_demo_draws_the_picture(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "demo.png"
    assert main(["demo", "--out", str(out)]) == 0
    assert out.stat().st_size > 10_000 and out.read_bytes()[:4] == b"\x89PNG"
