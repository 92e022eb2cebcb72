"""The ``sksemantic`` argument parser and entry point."""

import argparse
import warnings

from ..neighbors import ALGORITHMS, METRICS
from ..utils._progress import write_line
from ._console import CLIError, set_quiet
from ._jobs import run_dedup, run_graph, run_ids, run_index, run_search

__all__ = ["build_parser", "main"]

_METRICS = ", ".join(METRICS)
_ALGORITHMS = ", ".join(ALGORITHMS)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr (exit status 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except where the help already says it."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or "default" in text:
            return text
        return super()._get_help_string(action)


def _common():
    common = _Parser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true",
                        help="print no steps or progress (errors, warnings and results only)")
    common.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error instead of one line")
    return common


def build_parser(demo=None):
    """The parser of the ``sksemantic`` command.

    Parameters
    ----------
    demo : callable, default=None
        The ``demo`` job (``demo(args) -> int``); the subcommand is left out when None.

    Returns
    -------
    parser : argparse.ArgumentParser
    """
    from .. import __version__

    parser = _Parser(
        prog="sksemantic",
        description="Similarity graphs, semantic IDs and search over embeddings. Inputs are "
                    "2-d float arrays saved with numpy.save (.npy); steps and progress go to "
                    "stderr, results to stdout or the --out file.",
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_Parser)
    common = [_common()]

    def add(name, help, description=None):
        p = sub.add_parser(name, help=help, description=description or help,
                           parents=common, formatter_class=_Formatter)
        p.set_defaults(parser=p)
        return p

    if demo is not None:
        p = add("demo", "the main job on the shipped Debian corpus: graph, communities, "
                        "near-duplicates, semantic IDs, searches")
        p.add_argument("--out", default="sksemantic-demo.png",
                       help="picture of the communities to write ('' for none)")
        p.add_argument("--embed", action="store_true",
                       help="re-embed the texts with the text extra (sentence-transformers)")
        p.set_defaults(func=demo)

    p = add("graph", "k-nearest-neighbour graph of embeddings.npy, saved as a scipy "
                     "sparse .npz")
    p.add_argument("embeddings", help="embeddings .npy file, shape (n_samples, n_features)")
    p.add_argument("--out", default="graph.npz",
                   help="graph file (scipy.sparse.save_npz); '.npz' is appended when missing")
    p.add_argument("--n-neighbors", type=int, default=10,
                   help="neighbours per point besides the point itself")
    p.add_argument("--metric", default="cosine", help=f"one of {_METRICS}")
    p.add_argument("--mode", default="distance",
                   help="stored values: distance, connectivity or similarity")
    p.add_argument("--min-similarity", type=float, default=None,
                   help="drop edges whose similarity is below this (default: keep all)")
    p.add_argument("--algorithm", default="auto", help=f"neighbour search: one of {_ALGORITHMS}")
    p.add_argument("--target-recall", type=float, default=0.95,
                   help="recall@k that approximate search keeps, measured against exact "
                        "search (see the User Guide's recall contract)")
    p.set_defaults(func=run_graph)

    p = add("dedup", "near-duplicate groups of embeddings.npy (a group label per row)")
    p.add_argument("embeddings", help="embeddings .npy file, shape (n_samples, n_features)")
    p.add_argument("--out", default="groups.npy",
                   help="group labels, one int per row (numpy.save); '.npy' is appended when "
                        "missing")
    p.add_argument("--min-similarity", type=float, default=0.9,
                   help="link two items at this similarity or above (cosine: in [-1, 1])")
    p.add_argument("--n-neighbors", type=int, default=10,
                   help="candidate links searched per item")
    p.add_argument("--metric", default="cosine", help=f"one of {_METRICS}")
    p.add_argument("--algorithm", default="auto", help=f"neighbour search: one of {_ALGORITHMS}")
    p.add_argument("--target-recall", type=float, default=0.95,
                   help="recall@k that approximate search keeps, measured against exact "
                        "search (see the User Guide's recall contract)")
    p.set_defaults(func=run_dedup)

    p = add("ids", "unique semantic IDs (residual k-means codes) for embeddings.npy")
    p.add_argument("embeddings", help="embeddings .npy file, shape (n_samples, n_features)")
    p.add_argument("--out", default="ids.txt",
                   help="a .txt file gets one ID string per line; any other name gets the "
                        "codes as an int array ('.npy' appended when missing)")
    p.add_argument("--n-levels", type=int, default=3, help="code levels (before the counter)")
    p.add_argument("--n-clusters", type=int, default=256, help="codes per level")
    p.add_argument("--format", default="plain", choices=["plain", "token"],
                   help="ID strings in a .txt file: plain '3-41-7-0' or token '<a_3><b_41>...'")
    p.set_defaults(func=run_ids)

    p = add("index", "build a search index of corpus.npy and save it, for 'search --index'")
    p.add_argument("corpus", help="corpus embeddings .npy file, shape (n_samples, n_features)")
    p.add_argument("--out", required=True,
                   help="directory to write (created; an earlier saved index there is replaced)")
    p.add_argument("--metric", default="cosine", help=f"one of {_METRICS}")
    p.add_argument("--algorithm", default="auto", help=f"index: one of {_ALGORITHMS}")
    p.add_argument("--target-recall", type=float, default=0.95,
                   help="recall@k that approximate search keeps, measured against exact "
                        "search (see the User Guide's recall contract)")
    p.set_defaults(func=run_index)

    p = add("search", "top-k search of queries.npy in corpus.npy, or in a saved index",
            description="Top-k search of queries.npy: in corpus.npy (indexed on every call), "
                        "or, with --index DIR, in an index saved by 'sksemantic index'. "
                        "Without --out, prints one line per query: "
                        "'query corpus_id:score corpus_id:score ...'.")
    p.usage = "%(prog)s [options] [CORPUS] QUERIES"
    p.add_argument("inputs", nargs="+", metavar="[CORPUS] QUERIES",
                   help="corpus and queries .npy files; only the queries with --index")
    p.add_argument("--index", metavar="DIR", default=None,
                   help="search the index saved in DIR instead of indexing a corpus")
    p.add_argument("--top-k", type=int, default=10, help="results per query")
    p.add_argument("--out", default=None,
                   help="write the results to this .npz (arrays 'ids' and 'scores', one row per "
                        "query; '.npz' appended when missing) instead of stdout")
    p.add_argument("--metric", default=None,
                   help=f"when indexing a corpus: one of {_METRICS} (default: cosine)")
    p.add_argument("--algorithm", default=None,
                   help=f"when indexing a corpus: one of {_ALGORITHMS} (default: auto)")
    p.add_argument("--target-recall", type=float, default=None,
                   help="when indexing a corpus: recall@k that approximate search keeps, "
                        "measured against exact search (default: 0.95)")
    p.set_defaults(func=run_search)
    return parser


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    write_line(f"sksemantic: warning: {' '.join(str(message).split())}")  # even with --quiet


def main(argv=None, *, demo=None):
    """Run the ``sksemantic`` command; errors exit with status 2 and one line on stderr.

    Parameters
    ----------
    argv : list of str, default=None
        The arguments; ``sys.argv[1:]`` when None.
    demo : callable, default=None
        The ``demo`` job.

    Returns
    -------
    status : int
        0 on success.
    """
    args = build_parser(demo).parse_args(argv)
    set_quiet(args.quiet)
    try:
        with warnings.catch_warnings():
            if not args.debug:
                warnings.showwarning = _one_line_warning
            return args.func(args)
    except CLIError as exc:
        if args.debug:
            raise
        args.parser.exit(2, f"{args.parser.prog}: error: {exc}\n")
    except MemoryError as exc:
        if args.debug:
            raise
        args.parser.exit(1, f"{args.parser.prog}: error: out of memory ({exc or 'no detail'}); "
                            "try a smaller input or a machine with more memory\n")
    except KeyboardInterrupt:
        args.parser.exit(130, f"{args.parser.prog}: interrupted\n")
    finally:
        set_quiet(False)
