"""What the command line writes: files at the path it prints, results on stdout, steps on stderr."""

import re

import numpy as np
import pytest
import scipy.sparse as sp

import sksemantic
from sksemantic.cli import build_parser
from sksemantic.search import SemanticSearch


def test_version(run):
    r = run("--version")
    assert r.code == 0
    assert r.out.strip() == f"sksemantic {sksemantic.__version__}"


def _subparsers(parser):
    for action in parser._actions:
        if hasattr(action, "choices") and isinstance(action.choices, dict):
            yield from action.choices.items()


def test_every_option_has_help_and_shows_its_default():
    parser = build_parser(demo=lambda args: 0)
    commands = dict(_subparsers(parser))
    assert set(commands) == {"demo", "graph", "dedup", "ids", "index", "search"}
    for name, sub in commands.items():
        text = " ".join(sub.format_help().split())
        for action in sub._actions:
            if action.dest == "help":
                continue
            assert action.help, (name, action.dest)
            if action.default not in (None, False) and action.option_strings:
                assert f"default: {action.default}" in text, (name, action.dest)


def test_out_path_printed_is_the_file_written(run, tmp_path, emb):
    r = run("dedup", emb, "--out", tmp_path / "labels")
    assert r.code == 0, r.err
    assert (tmp_path / "labels.npy").exists() and not (tmp_path / "labels").exists()
    assert r.err_lines[-1].endswith(f"-> {tmp_path / 'labels.npy'}")
    r = run("graph", emb, "--out", tmp_path / "g", "--n-neighbors", "3")
    assert r.code == 0, r.err
    assert r.err_lines[-1].endswith(f"-> {tmp_path / 'g.npz'}")
    assert sp.load_npz(tmp_path / "g.npz").shape == (120, 120)
    r = run("ids", emb, "--out", tmp_path / "ids.txt", "--n-clusters", "4")
    assert r.code == 0, r.err
    assert r.err_lines[-1].endswith(f"-> {tmp_path / 'ids.txt'}")
    lines = (tmp_path / "ids.txt").read_text().splitlines()
    assert len(lines) == 120 and len(set(lines)) == 120


def test_failed_run_leaves_an_earlier_output_whole(run, tmp_path, emb):
    out = tmp_path / "labels.npy"
    np.save(out, np.arange(7))
    np.save(tmp_path / "one.npy", np.ones((1, 8), dtype=np.float32))
    r = run("dedup", tmp_path / "one.npy", "--out", out)
    assert r.code == 2
    assert np.load(out).tolist() == list(range(7))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["emb.npy", "labels.npy", "one.npy"]
    assert run("dedup", emb, "--out", out).code == 0
    assert np.load(out).shape == (120,)


def test_dedup_finds_the_duplicates_and_reports_on_stderr(run, tmp_path, emb):
    X = np.load(emb)
    np.save(tmp_path / "dup.npy", np.vstack([X, X[:5]]))
    r = run("dedup", tmp_path / "dup.npy", "--out", tmp_path / "l.npy",
            "--min-similarity", "0.9999")
    assert r.code == 0, r.err
    labels = np.load(tmp_path / "l.npy")
    assert (labels[120:] == labels[:5]).all()
    assert r.out == ""
    assert any("near-duplicate groups" in line for line in r.err_lines)
    assert any(line.startswith("[sksemantic]") for line in r.err_lines)  # progress


def test_quiet_prints_nothing_on_success(run, tmp_path, emb):
    r = run("dedup", emb, "--out", tmp_path / "l.npy", "-q")
    assert r.code == 0 and r.out == "" and r.err == ""


def test_search_prints_results_on_stdout_only(run, tmp_path, emb):
    X = np.load(emb)
    np.save(tmp_path / "q.npy", X[[3, 7]])
    r = run("search", emb, tmp_path / "q.npy", "--top-k", "4")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert len(lines) == 2
    for qi, (line, own) in enumerate(zip(lines, [3, 7], strict=True)):
        fields = line.split()
        assert fields[0] == str(qi) and len(fields) == 5
        assert re.fullmatch(rf"{own}:(0\.99\d\d|1\.0000)", fields[1])
    assert r.err and "search" in r.err


def test_search_out_matches_the_estimator(run, tmp_path, emb):
    X = np.load(emb)
    np.save(tmp_path / "q.npy", X[:6] + 0.01)
    r = run("search", emb, tmp_path / "q.npy", "--top-k", "5", "--out", tmp_path / "res")
    assert r.code == 0, r.err
    assert r.out == ""
    assert r.err_lines[-1].endswith(f"-> {tmp_path / 'res.npz'}")
    res = np.load(tmp_path / "res.npz")
    hits = SemanticSearch(random_state=0).fit(X).search(X[:6] + 0.01, top_k=5)
    assert res["ids"].tolist() == [[h["corpus_id"] for h in row] for row in hits]
    np.testing.assert_allclose(res["scores"], [[h["score"] for h in row] for row in hits],
                               rtol=1e-6)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_saved_index_gives_the_same_results_as_a_rebuild(run, tmp_path, emb, metric):
    X = np.load(emb)
    np.save(tmp_path / "q.npy", X[10:15] * 1.5)
    r = run("index", emb, "--out", tmp_path / "idx", "--metric", metric)
    assert r.code == 0, r.err
    assert SemanticSearch.load(tmp_path / "idx").metric == metric
    saved = run("search", "--index", tmp_path / "idx", tmp_path / "q.npy", "--top-k", "6")
    rebuilt = run("search", emb, tmp_path / "q.npy", "--top-k", "6", "--metric", metric)
    assert saved.code == rebuilt.code == 0
    assert saved.out == rebuilt.out and len(saved.out.splitlines()) == 5
    # Building again replaces the earlier save.
    np.save(tmp_path / "half.npy", X[:60])
    assert run("index", tmp_path / "half.npy", "--out", tmp_path / "idx").code == 0
    assert SemanticSearch.load(tmp_path / "idx").n_samples_fit_ == 60


def test_graph_command(run, tmp_path, emb):
    X = np.load(emb)
    np.save(tmp_path / "dup.npy", np.vstack([X, X[:5]]))
    r = run("graph", tmp_path / "dup.npy", "--out", tmp_path / "g.npz", "--n-neighbors", "5")
    assert r.code == 0, r.err
    G = sp.load_npz(tmp_path / "g.npz")
    assert G.shape == (125, 125) and G.nnz == 125 * 6


def test_out_through_a_symbolic_link_writes_the_target(run, tmp_path, emb):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "labels.npy"
    np.save(target, np.arange(3))
    (tmp_path / "link.npy").symlink_to(target)
    assert run("dedup", emb, "--out", tmp_path / "link.npy").code == 0
    assert (tmp_path / "link.npy").is_symlink()
    assert np.load(target).shape == (120,)


def test_warnings_are_one_line_on_stderr(run, tmp_path, emb):
    X = np.load(emb)
    X[4] = 0
    np.save(tmp_path / "zero.npy", X)
    for quiet in ([], ["-q"]):  # a warning is shown even with --quiet
        r = run("graph", tmp_path / "zero.npy", "--out", tmp_path / "g.npz", *quiet)
        assert r.code == 0
        warned = [line for line in r.err_lines if line.startswith("sksemantic: warning: ")]
        assert len(warned) == 1 and "all-zero" in warned[0], r.err
        assert "Traceback" not in r.err and "UserWarning" not in r.err
        assert len(r.err_lines) == 1 if quiet else len(r.err_lines) > 1


def test_out_of_memory_and_interrupt_are_one_line(run, monkeypatch, tmp_path, emb):
    from sksemantic.graph import SemanticDeduplicator

    def fail(exc):
        def fit(self, X, y=None):
            raise exc
        return fit

    monkeypatch.setattr(SemanticDeduplicator, "fit", fail(MemoryError()))
    r = run("dedup", emb, "--out", tmp_path / "l.npy")
    assert r.code == 1 and len(r.err_lines) == 1 and "out of memory" in r.err
    monkeypatch.setattr(SemanticDeduplicator, "fit", fail(KeyboardInterrupt()))
    r = run("dedup", emb, "--out", tmp_path / "l.npy")
    assert r.code == 130 and r.err_lines == ["sksemantic dedup: interrupted"]
    assert not (tmp_path / "l.npy").exists()


def test_search_reports_progress_on_stderr(run, tmp_path, emb):
    np.save(tmp_path / "q.npy", np.load(emb)[:40])
    assert run("index", emb, "--out", tmp_path / "idx").code == 0
    for argv in ([emb, tmp_path / "q.npy"], ["--index", tmp_path / "idx", tmp_path / "q.npy"]):
        r = run("search", *argv, "--top-k", "3")
        assert r.code == 0, r.err
        assert any(line.startswith("[sksemantic]") for line in r.err_lines), r.err
        assert len(r.out.splitlines()) == 40
        assert not any(line.startswith("[sksemantic]") for line in r.out.splitlines())
        quiet = run("search", *argv, "--top-k", "3", "-q")
        assert quiet.err == "" and quiet.out == r.out
    # The saved index stays quiet when loaded outside the command line.
    assert SemanticSearch.load(tmp_path / "idx").verbose == 0
