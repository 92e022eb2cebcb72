"""Save directories that readers always open whole while a writer replaces them.

A save directory holds one sub-directory per save and a pointer to the current one::

    path/
        CURRENT                 the name of the current version, e.g. "v000002-3fa1c07e"
        v000002-3fa1c07e/
            manifest.json       size and CRC-32 of every other file of the version
            ...                 the files written by the caller

A save writes a new version, then its manifest (last: a version without one is
incomplete), then replaces ``CURRENT`` atomically (``os.replace``), and finally removes
the older versions and the leftovers of saves that were killed. A load reads
``CURRENT`` once and opens only that version: it sees the old save or the new one,
never a mix. Nothing is ever renamed over ``path`` itself, so ``"."`` is a valid target.

While a load reads a version it holds a shared ``flock`` on its manifest (where the
platform has ``fcntl``); a save removes an old version only under an exclusive lock it
gets without waiting, and otherwise leaves it for the next save. A load that still
finds its version gone (it read the pointer just before the version was removed)
starts again from the new pointer. Once loaded, memory maps of removed files stay
valid (POSIX keeps unlinked files alive while mapped). One writer at a time per
directory is assumed: concurrent saves to the same directory may fail (with an error,
never a mix).

Files are checked against the manifest before anything is unpickled: sizes always, the
checksums when ``verify`` is true (which reads every file once).
"""

import json
import os
import re
import secrets
import shutil
import warnings
import zlib
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: loads rely on retrying alone
    fcntl = None

__all__ = ["open_directory", "save_directory"]

POINTER = "CURRENT"
MANIFEST = "manifest.json"
#: Manifest format, raised when its meaning changes.
FORMAT = 1

_VERSION = re.compile(r"v(\d{6,})-[0-9a-f]{8}")
_POINTER_TMP = re.compile(r"\.CURRENT\.(v\d{6,}-[0-9a-f]{8})\.tmp")
# A save written before versioned directories: its files directly in the directory.
_LEGACY_FILE = re.compile(r"search\.pkl|index\.pkl|index\.ann|index\.[^/]+\.npy")
_LEGACY_MARK = "index.pkl"
# Loads that find their version removed under them start again this many times.
_ATTEMPTS = 20
_CHUNK = 1 << 22


# -- saving -------------------------------------------------------------------------
def save_directory(path, write, *, kind):
    """Write a new version of the save directory ``path`` and make it current.

    Parameters
    ----------
    path : str or path-like
        Created if missing. It may be empty or hold earlier saves; anything else in it
        is refused, so that nothing there is lost.
    write : callable
        ``write(directory)`` writes the files of the save (plain files only) into a
        fresh, empty ``directory``.
    kind : str
        What the save holds, recorded in the manifest and checked by
        :func:`open_directory`.

    Returns
    -------
    path : pathlib.Path
    """
    path = Path(path)
    _check_target(path)
    path.mkdir(parents=True, exist_ok=True)
    number = 1 + max((n for n, _ in _versions(path)), default=0)
    name = f"v{number:06d}-{secrets.token_hex(4)}"
    version = path / name
    version.mkdir()
    pointer_tmp = path / f".{POINTER}.{name}.tmp"
    try:
        write(version)
        files = {}
        for entry in sorted(os.scandir(version), key=lambda e: e.name):
            if not entry.is_file(follow_symlinks=False):
                raise RuntimeError(f"a save may hold plain files only, not {entry.path}.")
            files[entry.name] = _record(entry.path)
        from . import __version__

        manifest = {"format": FORMAT, "kind": kind, "sksemantic_version": __version__,
                    "files": files}
        _write_durably(version / MANIFEST, _dump_manifest(manifest))
        _fsync_directory(version)
        _write_durably(pointer_tmp, (name + "\n").encode())
        os.replace(pointer_tmp, path / POINTER)
    except BaseException:
        shutil.rmtree(version, ignore_errors=True)
        _unlink(pointer_tmp)
        raise
    _fsync_directory(path)
    _remove_stale(path, number)
    return path


def _ours(path, entry):
    """Whether the entry of a save directory was written by a save."""
    name = entry.name
    if name == POINTER or _POINTER_TMP.fullmatch(name):
        return entry.is_file(follow_symlinks=False)
    if _VERSION.fullmatch(name):
        return entry.is_dir(follow_symlinks=False)
    if _LEGACY_FILE.fullmatch(name):
        return entry.is_file(follow_symlinks=False) and (path / _LEGACY_MARK).is_file()
    return False


def _check_target(path):
    if not path.exists():
        return
    if not path.is_dir():
        raise FileExistsError(f"{path} exists and is not a directory; refusing to replace it.")
    foreign = sorted(e.name for e in os.scandir(path) if not _ours(path, e))
    if foreign:
        shown = ", ".join(repr(n) for n in foreign[:10]) + (", ..." if len(foreign) > 10 else "")
        raise FileExistsError(
            f"{path} holds entries that are not part of a save: {shown}; refusing to save "
            "there, so that they are not lost. Save to a new or empty directory, or to one "
            "that holds only an earlier save."
        )


def _versions(path):
    """(number, name) of the version directories in ``path``."""
    out = []
    for entry in os.scandir(path):
        match = _VERSION.fullmatch(entry.name)
        if match and entry.is_dir(follow_symlinks=False):
            out.append((int(match[1]), entry.name))
    return out


def _remove_stale(path, number):
    """Remove what saves before version ``number`` left: older versions (unless being
    loaded), pointers of killed saves, and the files of a save in the earlier layout."""
    legacy = (path / _LEGACY_MARK).is_file()
    for entry in os.scandir(path):
        match = _VERSION.fullmatch(entry.name)
        tmp = _POINTER_TMP.fullmatch(entry.name)
        if match and int(match[1]) < number and entry.is_dir(follow_symlinks=False):
            _remove_version(Path(entry.path))
        elif tmp and int(_VERSION.fullmatch(tmp[1])[1]) < number:
            _unlink(entry.path)
        elif legacy and _LEGACY_FILE.fullmatch(entry.name) and entry.is_file():
            _unlink(entry.path)


def _remove_version(version):
    try:
        fd = os.open(version / MANIFEST, os.O_RDONLY)
    except FileNotFoundError:  # never completed: a killed save
        shutil.rmtree(version, ignore_errors=True)
        return
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # being loaded: the next save removes it
                return
        # The manifest goes first: a load that opened it before the lock sees it gone.
        _unlink(version / MANIFEST)
        shutil.rmtree(version, ignore_errors=True)
    finally:
        os.close(fd)


def _unlink(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError:  # pragma: no cover - Windows refuses to remove mapped files
        pass


def _record(file):
    """Size and CRC-32 of ``file``, flushed to disk."""
    with open(file, "rb") as fh:
        crc, size = _crc32(fh)
        os.fsync(fh.fileno())
    return {"size": size, "crc32": crc}


def _crc32(fh):
    crc, size = 0, 0
    buf = bytearray(_CHUNK)
    view = memoryview(buf)
    while n := fh.readinto(buf):
        crc = zlib.crc32(view[:n], crc)
        size += n
    return crc, size


def _dump_manifest(manifest):
    body = json.dumps(manifest, sort_keys=True, separators=(",", ":"))
    # The manifest checks itself too: a damaged manifest must not vouch for anything.
    return json.dumps({"manifest": manifest, "crc32": zlib.crc32(body.encode())},
                      sort_keys=True, indent=1).encode()


def _write_durably(file, data):
    with open(file, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _fsync_directory(path):
    if os.name != "posix":  # pragma: no cover - directories cannot be opened elsewhere
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- loading ------------------------------------------------------------------------
def open_directory(path, read, *, kinds, verify=True, what=None):
    """Check the current version of the save directory ``path`` and read it.

    Parameters
    ----------
    path : str or path-like
        A directory written by :func:`save_directory`.
    read : callable
        ``read(directory)`` reads the checked files of the version in ``directory``
        and returns what was saved; it runs only after the check passed.
    kinds : tuple of str
        Kinds of save accepted (see :func:`save_directory`).
    verify : bool, default=True
        Check every file's checksum (reads each file once) besides its size.
    what : str, default=None
        What the caller loads, for the error on another kind of save.

    Returns
    -------
    The value of ``read``.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is not a directory written by save.")
    for _ in range(_ATTEMPTS):
        name = _read_pointer(path)
        if name is None:
            if (path / MANIFEST).is_file():  # a version directory itself
                return _open_version(path, read, kinds, verify, what)
            if (path / _LEGACY_MARK).is_file():
                warnings.warn(
                    f"{path} was saved by an earlier version of sksemantic, without "
                    "checksums: its files are loaded unchecked. Save it again to get the "
                    "checked format.",
                    UserWarning,
                    stacklevel=3,
                )
                return read(path)
            raise FileNotFoundError(f"{path} holds no save: {path / POINTER} is missing.")
        try:
            return _open_version(path / name, read, kinds, verify, what)
        except FileNotFoundError:
            if _read_pointer(path) == name:
                raise  # the current save itself lacks a file
            # A newer save replaced this version while it was being opened: read that.
    raise OSError(f"{path} was replaced by newer saves {_ATTEMPTS} times while loading it.")


def _read_pointer(path):
    try:
        name = (path / POINTER).read_text().strip()
    except FileNotFoundError:
        return None
    if not _VERSION.fullmatch(name):
        raise ValueError(f"{path / POINTER} is damaged: it names {name[:80]!r}.")
    return name


def _open_version(version, read, kinds, verify, what):
    manifest_file = version / MANIFEST
    try:
        fd = os.open(manifest_file, os.O_RDONLY)
    except FileNotFoundError:  # removed by a newer save (retried), or never written
        raise FileNotFoundError(
            f"{manifest_file} is missing: {version.parent / POINTER} names an "
            "incomplete or removed save."
        ) from None
    with os.fdopen(fd, "rb") as fh:
        if fcntl is not None:
            fcntl.flock(fh.fileno(), fcntl.LOCK_SH)  # released when fh closes
        if os.fstat(fh.fileno()).st_nlink == 0:
            raise FileNotFoundError(f"{version} was removed by a newer save.")
        manifest = _parse_manifest(fh.read(), manifest_file)
        if manifest.get("kind") not in kinds:
            raise ValueError(
                f"{version} holds a saved {manifest.get('kind')}, not a "
                f"{what or ' or '.join(kinds)}."
            )
        for name, rec in manifest["files"].items():
            _check_file(version, name, rec, verify)
        return read(version)


def _parse_manifest(data, file):
    try:
        outer = json.loads(data)
        manifest = outer["manifest"]
        body = json.dumps(manifest, sort_keys=True, separators=(",", ":"))
        ok = zlib.crc32(body.encode()) == outer["crc32"]
        files = manifest["files"]
    except (ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        raise ValueError(f"{file} is damaged (it does not match its own checksum).")
    if manifest.get("format") != FORMAT:
        raise ValueError(
            f"{file} has format {manifest.get('format')!r}; this sksemantic reads format "
            f"{FORMAT}: load it with the sksemantic that saved it "
            f"({manifest.get('sksemantic_version')})."
        )
    for name in files:
        if Path(name).name != name or name in (".", "..", MANIFEST):
            raise ValueError(f"{file} lists an invalid file name {name!r}.")
    return manifest


def _check_file(version, name, rec, verify):
    file = version / name
    size = os.stat(file).st_size  # FileNotFoundError: removed, or missing
    if size != rec["size"]:
        raise ValueError(
            f"{file} has {size} bytes but was saved with {rec['size']}: it was truncated "
            "or changed after saving; refusing to load it."
        )
    if verify:
        with open(file, "rb") as fh:
            crc, _ = _crc32(fh)
        if crc != rec["crc32"]:
            raise ValueError(
                f"{file} does not match the checksum recorded when it was saved: it was "
                "damaged or changed after saving; refusing to load it."
            )
