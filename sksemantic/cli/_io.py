"""Files of the command line: embeddings read with every check up front, outputs
checked writable before any work and replaced whole at the end."""

import os
import tempfile
from pathlib import Path

import numpy as np

from ._console import CLIError

__all__ = ["Output", "check_index_dir", "check_same_width", "read_embeddings"]

# Rows converted (and checked for NaN) at a time, to bound temporary memory.
_CHUNK_ROWS = 65_536


def _size(n_bytes):
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n_bytes < 1024 or unit == "TiB":
            return f"{n_bytes:,.0f} {unit}" if unit == "bytes" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024
    return None  # pragma: no cover


def _header(fh, what, path):
    """Shape and dtype from a ``.npy`` header, or a CLIError saying what the file is."""
    start = fh.read(6)
    fh.seek(0)
    if start[:4] == b"PK\x03\x04":
        raise CLIError(
            f"{what} file '{path}' is a .npz archive; give one array saved with numpy.save, "
            f"e.g. np.save('{what}.npy', np.load('{path}')['<name>'])."
        )
    if not start:
        raise CLIError(f"{what} file '{path}' is empty: a .npy file (numpy.save) is needed.")
    if start != b"\x93NUMPY":
        text = all(32 <= b < 127 or b in b"\t\r\n" for b in start)
        kind = "a text file (CSV?)" if text else "not a .npy file"
        hint = (f"; convert it with np.save('{what}.npy', np.loadtxt('{path}', delimiter=','))"
                if kind.startswith("a text") else "")
        raise CLIError(f"{what} file '{path}' is {kind}: a .npy file (numpy.save) is needed{hint}.")
    try:
        version = np.lib.format.read_magic(fh)
        reader = {(1, 0): np.lib.format.read_array_header_1_0,
                  (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if reader is None:
            raise ValueError(f"unsupported .npy format version {version}")
        shape, _, dtype = reader(fh)
    except ValueError as exc:
        raise CLIError(f"{what} file '{path}' has a damaged .npy header: {exc}.") from None
    return shape, dtype, fh.tell()


def read_embeddings(path, what):
    """Read a 2-d numeric ``.npy`` file as a float32 array, or raise a one-line CLIError.

    The header is checked before anything is allocated: the array must be 2-d, real
    and numeric, and the file must hold as many bytes as its header promises (a
    damaged header must not trigger a huge allocation). Values are converted in
    chunks and must be finite in float32.

    Parameters
    ----------
    path : str or path-like
        The ``.npy`` file.
    what : str
        What the file holds (``"embeddings"``, ``"corpus"``, ``"queries"``), for messages.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), dtype float32
    """
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        raise CLIError(f"{what} file '{path}' does not exist.") from None
    except IsADirectoryError:
        raise CLIError(f"{what} file '{path}' is a directory, not a .npy file.") from None
    except OSError as exc:
        raise CLIError(f"cannot read {what} file '{path}': {exc.strerror}.") from None
    with fh:
        shape, dtype, offset = _header(fh, what, path)
        file_size = os.fstat(fh.fileno()).st_size
    if dtype.hasobject or dtype.names is not None or dtype.kind not in "biuf":
        kinds = {"c": "complex numbers (embeddings are real: take .real yourself if the "
                      "imaginary part is meant to go)",
                 "U": "strings", "S": "bytes", "O": "Python objects",
                 "M": "dates", "m": "time spans"}
        held = kinds.get(dtype.kind, "records, not plain numbers")
        raise CLIError(f"{what} file '{path}' holds {held} (dtype {dtype}); "
                       "a numeric array is needed.")
    if len(shape) != 2:
        raise CLIError(f"{what} must be a 2-d array (n_samples, n_features); '{path}' holds "
                       f"shape {shape}.")
    if shape[0] == 0 or shape[1] == 0:
        raise CLIError(f"{what} file '{path}' holds an empty array of shape {shape}.")
    needed = offset + shape[0] * shape[1] * dtype.itemsize
    if file_size < needed:
        raise CLIError(
            f"{what} file '{path}' is truncated or damaged: its header describes a "
            f"{shape[0]:,} x {shape[1]:,} {dtype} array ({_size(needed - offset)}) but the "
            f"file holds {_size(max(file_size - offset, 0))} of data."
        )
    try:
        src = np.load(path, mmap_mode="r", allow_pickle=False)
        X = np.empty(shape, dtype=np.float32)
        for start in range(0, shape[0], _CHUNK_ROWS):
            block = src[start:start + _CHUNK_ROWS]
            with np.errstate(over="ignore", invalid="ignore"):
                X[start:start + len(block)] = block
            bad = ~np.isfinite(X[start:start + len(block)]).all(axis=1)
            if bad.any():
                row = start + int(np.flatnonzero(bad)[0])
                values = np.asarray(src[row])
                problem = ("NaN" if np.isnan(values).any() else
                           "infinite values" if np.isinf(values).any() else
                           "values beyond the float32 range")
                raise CLIError(f"{what} file '{path}' holds {problem} (first in row {row}); "
                               "every value must be a finite number.")
        del src
    except MemoryError:
        raise CLIError(
            f"not enough memory to read {what} file '{path}' "
            f"({shape[0]:,} x {shape[1]:,} as float32: {_size(4 * shape[0] * shape[1])})."
        ) from None
    except OSError as exc:
        raise CLIError(f"cannot read {what} file '{path}': {exc}.") from None
    return X


def check_same_width(queries, n_features, source):
    """Raise a CLIError unless the queries have the corpus's ``n_features`` columns."""
    if queries.shape[1] != n_features:
        raise CLIError(
            f"queries have {queries.shape[1]} features but {source} has {n_features}: "
            "embed queries and corpus with the same model."
        )


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


class Output:
    """An output file, checked writable at creation and replaced whole by :meth:`write`.

    Parameters
    ----------
    path : str
        The path given on the command line.
    option : str
        The option that gave it (``"--out"``), for messages.
    suffix : str or None
        Appended when the path does not end with it (numpy's convention for
        ``numpy.save`` and ``scipy.sparse.save_npz``); None keeps the path as given.
    inputs : sequence of str
        Input files, which the output must not overwrite.
    """

    def __init__(self, path, option, suffix=None, inputs=()):
        if not str(path):
            raise CLIError(f"{option} is empty: give a file name.")
        path = str(path)
        if Path(path).is_dir():
            raise CLIError(f"{option} '{path}' is a directory; give a file name.")
        if suffix and not path.endswith(suffix):
            path += suffix
        self.path = p = Path(path)
        self.option = option
        if p.is_dir():
            raise CLIError(f"{option} '{p}' is a directory; give a file name.")
        for inp in inputs:
            if p.exists() and Path(inp).exists() and os.path.samefile(p, inp):
                raise CLIError(f"{option} '{p}' is an input file; writing it would destroy it.")
        parent = Path(os.path.realpath(p)).parent
        if not parent.is_dir():
            raise CLIError(f"cannot write {option} '{p}': directory '{parent}' does not exist.")
        if p.exists() and not os.access(p, os.W_OK):
            raise CLIError(f"cannot write {option} '{p}': the file is read-only.")
        try:  # the only sure test of writability is writing
            fd, probe = tempfile.mkstemp(prefix=f".{p.name}.", dir=parent)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise CLIError(f"cannot write {option} '{p}': {exc.strerror}.") from None

    def write(self, writer):
        """Call ``writer(binary_file)`` on a temporary file, then move it into place.

        An earlier file at the path stays whole until the new one is complete.
        """
        p = Path(os.path.realpath(self.path))  # through a symbolic link, as open() writes
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)
        try:
            mode = p.stat().st_mode & 0o777 if p.exists() else 0o666 & ~_umask()
            with os.fdopen(fd, "wb") as fh:
                writer(fh)
            os.chmod(tmp, mode)
            os.replace(tmp, p)
        except OSError as exc:
            raise CLIError(f"cannot write {self.option} '{p}': {exc.strerror or exc}.") from None
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return self.path


def check_index_dir(path, option):
    """Check before any work that a saved index can be written to the directory ``path``.

    :meth:`SemanticSearch.save <sksemantic.search.SemanticSearch.save>` replaces a
    directory only when it is empty or holds an earlier save; anything else is refused
    here, before the index is built.
    """
    from ..search import SemanticSearch

    p = Path(path)
    if not str(path):
        raise CLIError(f"{option} is empty: give a directory name.")
    if p.exists() and not p.is_dir():
        raise CLIError(f"{option} '{p}' is a file; a saved index is a directory.")
    if p.is_dir() and any(p.iterdir()):
        try:
            SemanticSearch.load(p)
        except Exception:  # whatever it holds, it is not an index to replace
            raise CLIError(
                f"{option} '{p}' is a directory that does not hold a saved index; refusing "
                "to replace its contents."
            ) from None
    ancestor = p.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise CLIError(f"cannot write {option} '{p}': '{ancestor}' is not a directory.")
    try:
        probe = tempfile.mkdtemp(prefix=f".{p.name}.", dir=ancestor)
        os.rmdir(probe)
    except OSError as exc:
        raise CLIError(f"cannot write {option} '{p}': {exc.strerror}.") from None
    return p
