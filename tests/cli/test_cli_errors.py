"""Bad input to the command line: exit status 2, one line on stderr naming the problem."""

import errno
import tempfile

import numpy as np
import pytest

import sksemantic.cli._jobs as jobs
from tests._helpers import run_python


def assert_one_line_error(r, command, *words):
    assert r.code == 2, (r.code, r.err)
    assert len(r.err_lines) == 1, r.err
    line = r.err_lines[0]
    assert line.startswith(f"sksemantic {command}: error: "), line
    assert "Traceback" not in r.err
    for word in words:
        assert word in line, (word, line)
    assert r.out == ""


def write_npy_header(path, shape, descr="<f4", n_data_bytes=64):
    """A .npy file whose header claims ``shape`` but which holds few data bytes."""
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(
            fh, {"descr": descr, "fortran_order": False, "shape": shape}
        )
        fh.write(b"\0" * n_data_bytes)


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda p, X: np.savez(p.with_suffix(".npz"), a=X) or p.with_suffix(".npz"),
         [".npz archive"]),
        (lambda p, X: np.savetxt(p.with_suffix(".csv"), X, delimiter=",")
         or p.with_suffix(".csv"), ["text file", "np.loadtxt"]),
        (lambda p, X: np.save(p, np.array([["a", "b"], ["c", "d"]])) or p, ["strings"]),
        (lambda p, X: np.save(p, X.astype(np.complex64) + 1j) or p, ["complex"]),
        (lambda p, X: np.save(p, np.where(np.arange(X.size).reshape(X.shape) == 21, np.nan, X))
         or p, ["NaN", "row 2"]),
        (lambda p, X: np.save(p, np.full((4, 3), np.inf)) or p, ["infinite"]),
        (lambda p, X: np.save(p, np.full((4, 3), 1e300)) or p, ["float32 range"]),
        (lambda p, X: np.save(p, X[0]) or p, ["2-d array", "(8,)"]),
        (lambda p, X: np.save(p, X[:0]) or p, ["empty array"]),
        (lambda p, X: p.parent, ["directory"]),
        (lambda p, X: p.parent / "missing.npy", ["does not exist"]),
        (lambda p, X: write_npy_header(p, (10**9, 384)) or p,
         ["truncated or damaged", "1,000,000,000 x 384", "1.4 TiB"]),
        (lambda p, X: write_npy_header(p, (3,), descr="|O") or p, ["Python objects"]),
        (lambda p, X: (p.write_bytes(b""), p)[1], ["is empty"]),
        (lambda p, X: (p.write_bytes(bytes(range(256))), p)[1], ["not a .npy file"]),
        (lambda p, X: (p.write_bytes(b"\x93NUMPY\x01\x00"), p)[1], ["damaged .npy header"]),
    ],
    ids=["npz", "csv", "strings", "complex", "nan", "inf", "float32-overflow", "1d", "empty",
         "directory", "missing", "huge-header", "objects", "empty-file", "binary",
         "cut-header"],
)
def test_bad_embeddings_file(run, tmp_path, make, words):
    X = np.arange(40, dtype=np.float32).reshape(5, 8)
    path = make(tmp_path / "bad.npy", X)
    r = run("dedup", path, "--out", tmp_path / "labels.npy")
    assert_one_line_error(r, "dedup", "embeddings", *words)
    assert not (tmp_path / "labels.npy").exists()


def test_complex_input_is_not_truncated_to_its_real_part(run, tmp_path, emb):
    X = np.load(emb)
    np.save(tmp_path / "c.npy", X + 0.5j * X)
    r = run("graph", tmp_path / "c.npy", "--out", tmp_path / "g.npz")
    assert_one_line_error(r, "graph", "complex")
    assert not (tmp_path / "g.npz").exists()


@pytest.mark.parametrize(
    "argv, words",
    [
        (["graph", "{emb}", "--algorithm", "fast"], ["--algorithm", "'fast'", "brute"]),
        (["graph", "{emb}", "--metric", "cosin"], ["--metric", "'cosin'", "cosine"]),
        (["graph", "{emb}", "--mode", "weights"], ["--mode", "'weights'"]),
        (["graph", "{emb}", "--n-neighbors", "0"], ["--n-neighbors", "[1, inf)", "got 0"]),
        (["dedup", "{emb}", "--n-neighbors", "-3"], ["--n-neighbors", "got -3"]),
        (["dedup", "{emb}", "--algorithm", "exact"], ["--algorithm", "'exact'"]),
        (["search", "{emb}", "{emb}", "--top-k", "0"], ["--top-k", "[1, inf)", "got 0"]),
        (["graph", "{emb}", "--target-recall", "1.5"], ["--target-recall", "got 1.5"]),
        (["index", "{emb}", "--out", "{tmp}/ix", "--target-recall", "0"], ["--target-recall"]),
        (["search", "{emb}", "{emb}", "--metric", "dot"], ["--metric", "'dot'"]),
        (["index", "{emb}", "--out", "{tmp}/idx", "--algorithm", "x"], ["--algorithm"]),
        (["ids", "{emb}", "--n-levels", "0"], ["--n-levels", "got 0"]),
        (["dedup", "{emb}", "--min-similarity", "1.5"], ["--min-similarity", "[-1, 1]", "1.5"]),
        (["dedup", "{emb}", "--min-similarity", "-2"], ["--min-similarity", "[-1, 1]"]),
        (["dedup", "{emb}", "--min-similarity", "nan"], ["--min-similarity", "finite"]),
        (["dedup", "{emb}", "--metric", "euclidean", "--min-similarity", "1.01"],
         ["--min-similarity", "[0, 1]", "euclidean"]),
        (["graph", "{emb}", "--min-similarity", "2"], ["--min-similarity", "[-1, 1]"]),
        (["graph", "{emb}", "--n-neighbors", "ten"], ["--n-neighbors", "'ten'"]),
        (["ids", "{emb}", "--format", "json"], ["--format", "'json'"]),
        (["search", "{emb}"], ["corpus and the queries"]),
        (["search", "{emb}", "{emb}", "--index", "{tmp}/idx"], ["only the queries"]),
    ],
)
def test_bad_option_is_reported_before_any_work(run, monkeypatch, tmp_path, emb, argv, words):
    def no_reading(*args, **kwargs):
        raise AssertionError("the input was read before the options were checked")

    monkeypatch.setattr(jobs, "read_embeddings", no_reading)
    argv = [a.format(emb=emb, tmp=tmp_path) for a in argv]
    assert_one_line_error(run(*argv, "--out", tmp_path / "o") if "--out" not in argv
                          else run(*argv), argv[0], *words)


def test_min_similarity_range_depends_on_the_metric(run, tmp_path, emb):
    # The inner product has no bounded range: any finite threshold is meaningful.
    r = run("dedup", emb, "--metric", "inner_product", "--min-similarity", "5",
            "--out", tmp_path / "l.npy")
    assert r.code == 0, r.err
    assert (tmp_path / "l.npy").exists()


@pytest.mark.parametrize("out, words", [
    ("{tmp}/no/such/dir/out.npy", ["cannot write --out", "does not exist"]),
    ("{tmp}", ["--out", "is a directory"]),
    ("{emb}", ["--out", "input file"]),
])
def test_unwritable_out_is_reported_before_any_work(run, monkeypatch, tmp_path, emb, out, words):
    def no_reading(*args, **kwargs):
        raise AssertionError("the input was read before --out was checked")

    monkeypatch.setattr(jobs, "read_embeddings", no_reading)
    before = emb.read_bytes()
    r = run("dedup", emb, "--out", out.format(tmp=tmp_path, emb=emb))
    assert_one_line_error(r, "dedup", *words)
    assert emb.read_bytes() == before


@pytest.mark.parametrize("argv", [
    ["graph", "{emb}"], ["dedup", "{emb}"], ["ids", "{emb}"], ["search", "{emb}", "{emb}"],
    ["index", "{emb}"],
], ids=lambda argv: argv[0])
def test_out_the_system_refuses_is_reported_before_any_work(run, monkeypatch, tmp_path, emb,
                                                            argv):
    # A directory without write permission, simulated where it would be made: the
    # permission bits do not stop root, who may run these tests.
    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    def no_reading(*args, **kwargs):
        raise AssertionError("the input was read before --out was checked")

    monkeypatch.setattr(jobs, "read_embeddings", no_reading)
    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    monkeypatch.setattr(tempfile, "mkdtemp", refuse)
    argv = [a.format(emb=emb) for a in argv]
    r = run(*argv, "--out", tmp_path / "out")
    assert_one_line_error(r, argv[0], "cannot write --out", "Permission denied")
    assert list(tmp_path.iterdir()) == [emb]


def test_index_out_refuses_a_directory_with_other_contents(run, tmp_path, emb):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    r = run("index", emb, "--out", tmp_path / "mine")
    assert_one_line_error(r, "index", "does not hold a saved index")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    r = run("index", emb, "--out", emb)
    assert_one_line_error(r, "index", "is a file")


def test_wrong_query_width_is_reported_before_indexing(run, monkeypatch, tmp_path, emb):
    from sksemantic.search import SemanticSearch

    def no_fit(*args, **kwargs):
        raise AssertionError("the corpus was indexed before the queries were checked")

    np.save(tmp_path / "q.npy", np.ones((3, 5), dtype=np.float32))
    monkeypatch.setattr(SemanticSearch, "fit", no_fit)
    r = run("search", emb, tmp_path / "q.npy")
    assert_one_line_error(r, "search", "queries have 5 features", "has 8")


def test_bad_queries_file_is_named(run, tmp_path, emb):
    Q = np.load(emb)[:3]
    Q[1, 4] = np.nan
    np.save(tmp_path / "q.npy", Q)
    r = run("search", emb, tmp_path / "q.npy")
    assert_one_line_error(r, "search", "queries file", "NaN", "row 1")


def test_wrong_query_width_against_a_saved_index(run, tmp_path, emb):
    assert run("index", emb, "--out", tmp_path / "idx").code == 0
    np.save(tmp_path / "q.npy", np.ones((3, 5), dtype=np.float32))
    r = run("search", "--index", tmp_path / "idx", tmp_path / "q.npy")
    assert_one_line_error(r, "search", "queries have 5 features", "has 8")


def test_search_index_that_is_not_an_index(run, tmp_path, emb):
    r = run("search", "--index", tmp_path / "nothing", emb)
    assert_one_line_error(r, "search", "--index", "does not hold a saved index")
    r = run("search", "--index", tmp_path / "idx", emb, "--metric", "euclidean")
    assert_one_line_error(r, "search", "--metric", "when the index is built")


@pytest.mark.parametrize("argv, words", [
    (["graph", "{one}"], ["'{one}'", "minimum of 2"]),
    (["dedup", "{one}"], ["'{one}'", "minimum of 2"]),
    (["graph", "{emb}", "--n-neighbors", "500"], ["--n-neighbors=500", "120"]),
    (["ids", "{emb}", "--n-clusters", "500"], ["--n-clusters=500"]),
])
def test_too_few_rows(run, tmp_path, emb, argv, words):
    np.save(tmp_path / "one.npy", np.ones((1, 8), dtype=np.float32))
    fmt = {"one": tmp_path / "one.npy", "emb": emb}
    argv = [a.format(**fmt) for a in argv]
    r = run(*argv, "--out", tmp_path / "o.txt")
    assert_one_line_error(r, argv[0], *[w.format(**fmt) for w in words])
    assert not (tmp_path / "o.txt").exists()


def test_errors_from_the_installed_command(tmp_path):
    """The real entry point: exit status 2 and one line, no traceback."""
    np.savez(tmp_path / "e.npz", a=np.ones((3, 2)))
    proc = run_python("-m", "sksemantic", "graph", tmp_path / "e.npz", cwd=tmp_path,
                      check=False)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and ".npz archive" in proc.stderr
    assert proc.stdout == ""


def test_debug_shows_the_traceback(run, tmp_path):
    with pytest.raises(Exception, match="does not exist"):
        run("dedup", tmp_path / "missing.npy", "--debug")
