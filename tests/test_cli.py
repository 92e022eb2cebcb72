"""The demo, end to end; the other commands are tested in tests/cli/."""

import numpy as np
import pytest

from sksemantic.__main__ import main

REPORT = ("communities, modularity", "distinct items", "query:", "every ID is unique (True)")
STEPS = ("similarity graph", "communities", "near-duplicate groups", "semantic IDs",
         "search index")


def test_demo_reports_on_stdout_steps_and_progress_on_stderr(monkeypatch, capsys):
    import sksemantic.search
    from sksemantic.datasets import load_debian_packages

    X = load_debian_packages().data
    made = []

    class RecordingEmbedder:  # stands in for the text model
        def __init__(self, verbose=0):
            made.append(verbose)

        def fit_transform(self, texts):
            return X

        def transform_queries(self, queries):
            return X[: len(queries)] + np.float32(0.01)

    monkeypatch.setattr(sksemantic.search, "TextEmbedder", RecordingEmbedder)
    assert main(["demo", "--embed", "--out", ""]) == 0
    assert made == [1]  # the embedding step shows its progress
    out, err = capsys.readouterr()
    for result in REPORT:
        assert result in out
    for step in ("re-embedding the texts",) + STEPS:
        assert any(line.startswith(f"... {step}") for line in err.splitlines()), step
    assert "... " not in out and "done in" in err


@pytest.mark.slow
def test_demo_with_the_shipped_embeddings_draws_the_picture(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "demo.png"
    assert main(["demo", "--out", str(out)]) == 0
    text, err = capsys.readouterr()
    for result in REPORT + ("more like:",):
        assert result in text
    assert f"picture -> {out}" in err
    assert out.stat().st_size > 10_000 and out.read_bytes()[:4] == b"\x89PNG"


def test_demo_checks_its_picture_path_first(capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--out", str(tmp_path / "no" / "demo.png")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err
