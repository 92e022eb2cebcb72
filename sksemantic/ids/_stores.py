"""Where assigned semantic IDs live: an in-memory store and a SQLite store.

A store maps an item key (a string) to its ID, a fixed-width tuple of integer codes,
and answers the two questions uniqueness needs inside one transaction: which keys are
already assigned, and which last-level codes are taken under a group (the ID without
its last code). :class:`SQLiteIDStore` runs every batch in one ``BEGIN IMMEDIATE``
transaction, so concurrent writers from several processes are serialised by SQLite's
write lock, a batch is committed whole or not at all, and a crash loses no batch that
was committed before it.

A stored ID is never replaced: inserting a key that already has one is an error, in
every store.
"""

import os
import pathlib
import sqlite3
import threading
from contextlib import contextmanager
from numbers import Real

import numpy as np

from ..utils import check_int_codes

__all__ = ["BaseIDStore", "InMemoryIDStore", "SQLiteIDStore"]


def _join(row):
    return "-".join(str(int(c)) for c in row)


def _check_insert(txn, keys, codes):
    """Validated ``(keys, codes)`` of an insert: str keys, new and distinct, and integer
    IDs as wide as each other and as those already stored."""
    if isinstance(keys, (str, bytes)):
        raise TypeError("keys must be a sequence of item keys, not a single string.")
    keys = list(keys)
    bad = [k for k in keys if not isinstance(k, str)]
    if bad:
        raise TypeError(f"keys must be str, got {type(bad[0]).__name__} {bad[0]!r}.")
    if not keys:
        return keys, np.zeros((0, 0), dtype=np.int64)
    try:
        codes = np.asarray(codes)
    except ValueError:  # ragged rows
        raise ValueError(
            "codes rows have different lengths; every ID in a store has the same width."
        ) from None
    codes = check_int_codes(codes, name="codes")
    if codes.shape[0] != len(keys):
        raise ValueError(
            f"keys has {len(keys)} entries but codes has {codes.shape[0]} rows; one ID per key."
        )
    width = txn.width()
    if width is not None and codes.shape[1] != width:
        raise ValueError(
            f"codes have {codes.shape[1]} levels but the store holds IDs of width {width}; "
            "every ID in a store has the same width."
        )
    if codes.min() < 0:
        raise ValueError("codes must be non-negative.")
    if len(set(keys)) != len(keys):
        seen = set()
        key = next(k for k in keys if k in seen or seen.add(k))
        raise ValueError(f"key {key!r} is inserted twice; one ID per key.")
    found = txn.get(keys)
    if found:
        key = next(k for k in keys if k in found)
        raise ValueError(
            f"key {key!r} already has the ID {_join(found[key])}; a stored ID is never "
            "replaced (look it up with get() instead)."
        )
    return keys, codes


class BaseIDStore:
    """Interface of ID stores. ``transaction()`` yields an object with the methods below.

    - ``meta(name) -> str or None`` and ``set_meta(name, value)``: settings bound to
      the store (the ID width and uniqueness policy), checked on every assignment.
    - ``get(keys) -> dict``: key -> tuple of codes, for the keys already assigned
      (this transaction's inserts included).
    - ``taken(groups) -> dict``: group string -> ndarray of the last-level codes taken.
    - ``width() -> int or None``: codes per stored ID (None while the store is empty).
    - ``insert(keys, codes)``: record new assignments. Keys must be new: inserting a
      key that already has an ID raises ValueError, as does a width that differs from
      the stored IDs'.
    """

    def transaction(self):  # pragma: no cover - interface
        raise NotImplementedError

    def all_codes(self):  # pragma: no cover - interface
        """Every assigned ID, as an int64 array of shape (n_items, width)."""
        raise NotImplementedError

    def __len__(self):  # pragma: no cover - interface
        raise NotImplementedError


class InMemoryIDStore(BaseIDStore):
    """The zero-configuration store: dictionaries in this process, guarded by a lock.

    It is picklable (with the assigner or on its own), which is how it persists.

    Examples
    --------
    >>> from sksemantic.ids import InMemoryIDStore
    >>> store = InMemoryIDStore()
    >>> with store.transaction() as txn:
    ...     txn.insert(["item-1"], [(3, 9, 1)])
    >>> with store.transaction() as txn:
    ...     txn.get(["item-1", "item-2"])
    {'item-1': (3, 9, 1)}
    """

    def __init__(self):
        self._ids = {}
        self._groups = {}
        self._meta = {}
        self._lock = threading.Lock()

    def __getstate__(self):
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @contextmanager
    def transaction(self):
        """A context manager yielding the store's transaction object (see :class:`BaseIDStore`).

        Changes are committed when the ``with`` block ends without an exception.
        """
        with self._lock:
            txn = _MemoryTxn(self)
            yield txn
            txn.commit()

    def all_codes(self):
        """Every assigned ID.

        Returns
        -------
        codes : ndarray of shape (n_items, width), dtype=int64
            One row per assigned ID.
        """
        with self._lock:
            rows = list(self._ids.values())
        width = len(rows[0]) if rows else 0
        return np.asarray(rows, dtype=np.int64).reshape(len(rows), width)

    def __len__(self):
        return len(self._ids)


class _MemoryTxn:
    """Buffers writes so that an exception inside the transaction commits nothing."""

    def __init__(self, store):
        self.store = store
        self.new = {}
        self.new_meta = {}

    def meta(self, name):
        return self.new_meta.get(name, self.store._meta.get(name))

    def set_meta(self, name, value):
        self.new_meta[name] = str(value)

    def get(self, keys):
        ids, new = self.store._ids, self.new
        return {k: new[k] if k in new else ids[k] for k in keys if k in ids or k in new}

    def taken(self, groups):
        pending = {}
        for row in self.new.values():
            pending.setdefault(_join(row[:-1]), set()).add(row[-1])
        out = {}
        for g in groups:
            codes = self.store._groups.get(g, set()) | pending.get(g, set())
            if codes:
                out[g] = np.fromiter(codes, dtype=np.int64)
        return out

    def width(self):
        for row in self.new.values():
            return len(row)
        for row in self.store._ids.values():
            return len(row)
        return None

    def insert(self, keys, codes):
        keys, codes = _check_insert(self, keys, codes)
        for key, row in zip(keys, codes.tolist(), strict=True):
            self.new[key] = tuple(row)

    def commit(self):
        store = self.store
        store._meta.update(self.new_meta)
        for key, row in self.new.items():
            store._ids[key] = row
            store._groups.setdefault(_join(row[:-1]), set()).add(row[-1])


class SQLiteIDStore(BaseIDStore):
    """Assignments in a SQLite database file, safe under concurrent writers.

    Each assignment batch is one ``BEGIN IMMEDIATE`` transaction: SQLite's write lock
    serialises writers from any number of processes (each waits up to ``timeout``
    seconds), the batch is committed whole or not at all, and the database is in WAL
    mode so readers do not block writers. The object pickles as its path, and every
    process opens its own connection.

    Parameters
    ----------
    path : str or os.PathLike
        Database file. It is resolved to an absolute path once, here, so the store
        (and an assigner holding it) names the same file after unpickling in another
        working directory.
    create : bool, default=False
        Whether a missing file may be created (as an empty store). By default a
        missing file is an error, so that a mistyped path or another working
        directory cannot silently start an empty store in place of the real one.
        An existing store is opened as is either way.
    timeout : float, default=60.0
        Seconds a writer waits for another's transaction to finish.

    Attributes
    ----------
    path : str
        Absolute path of the database file.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist and ``create`` is False.
    ValueError
        When ``path`` is an SQLite database without the store's tables and ``create``
        is False.

    Examples
    --------
    >>> import os, tempfile
    >>> from sksemantic.ids import SQLiteIDStore
    >>> path = os.path.join(tempfile.mkdtemp(), "ids.sqlite")
    >>> store = SQLiteIDStore(path, create=True)
    >>> with store.transaction() as txn:
    ...     txn.insert(["item-1"], [(3, 9, 1)])
    >>> with SQLiteIDStore(path).transaction() as txn:  # a new connection sees it
    ...     txn.get(["item-1"])
    {'item-1': (3, 9, 1)}
    """

    def __init__(self, path, *, create=False, timeout=60.0):
        if not isinstance(create, bool):
            raise TypeError(f"create must be a bool, got {type(create).__name__}.")
        if isinstance(timeout, bool) or not isinstance(timeout, Real):
            raise TypeError(f"timeout must be a number of seconds, got {timeout!r}.")
        if not timeout >= 0:
            raise ValueError(f"timeout must be >= 0 seconds, got {timeout!r}.")
        raw = os.fspath(path)
        if isinstance(raw, bytes):
            raw = os.fsdecode(raw)
        if raw in ("", ":memory:"):
            raise ValueError(
                f"path={raw!r} is not a file: an SQLite ID store lives in a database file "
                "(use InMemoryIDStore for a store in memory)."
            )
        self.path = os.path.abspath(raw)
        self.timeout = float(timeout)
        self._local = threading.local()
        if not create:
            self._check_existing(raw)
            return
        with self._connect_new(create=True) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(
                """
                CREATE TABLE IF NOT EXISTS ids (
                    key TEXT PRIMARY KEY,
                    code TEXT NOT NULL,
                    grp TEXT NOT NULL,
                    last INTEGER NOT NULL
                );
                CREATE INDEX IF NOT EXISTS ids_grp ON ids (grp);
                CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
                """
            )

    def _missing(self, raw):
        return FileNotFoundError(
            f"No SQLite ID store at {raw!r} (resolved to {self.path!r}). Check the path "
            "and working directory; to start a new, empty store there, pass create=True."
        )

    def _connect(self, create=False):
        """A connection to the file, which only ``create`` lets SQLite create."""
        uri = pathlib.Path(self.path).as_uri() + ("?mode=rwc" if create else "?mode=rw")
        try:
            return sqlite3.connect(uri, uri=True, timeout=self.timeout, isolation_level=None)
        except sqlite3.OperationalError:
            if not create and not os.path.exists(self.path):
                raise self._missing(self.path) from None
            raise

    def _check_existing(self, raw):
        if not os.path.exists(self.path):
            raise self._missing(raw)
        with self._connect_new() as conn:
            tables = {
                r[0] for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN (?, ?)",
                    ("ids", "meta"),
                )
            }
        if tables != {"ids", "meta"}:
            raise ValueError(
                f"{self.path!r} is not an SQLite ID store (it lacks the ids and meta "
                "tables); pass create=True to add them to this database."
            )

    def _connect_new(self, create=False):
        conn = self._connect(create)
        conn.execute("PRAGMA synchronous=NORMAL")
        return _Closing(conn)

    def _conn(self):
        # One connection per process and thread: sqlite3 connections must not cross forks.
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            local.conn = self._connect()  # never creates: a vanished file is an error
            local.pid = os.getpid()
        return local.conn

    def __getstate__(self):
        return {"path": self.path, "timeout": self.timeout}

    def __setstate__(self, state):
        self.path = state["path"]
        self.timeout = state["timeout"]
        self._local = threading.local()

    @contextmanager
    def transaction(self):
        """A context manager yielding the store's transaction object (see :class:`BaseIDStore`).

        Changes are committed when the ``with`` block ends without an exception.
        """
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield _SQLiteTxn(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def all_codes(self):
        """Every assigned ID.

        Returns
        -------
        codes : ndarray of shape (n_items, width), dtype=int64
            One row per assigned ID.
        """
        rows = self._conn().execute("SELECT code FROM ids").fetchall()
        codes = [[int(c) for c in r[0].split("-")] for r in rows]
        width = len(codes[0]) if codes else 0
        return np.asarray(codes, dtype=np.int64).reshape(len(codes), width)

    def __len__(self):
        return int(self._conn().execute("SELECT COUNT(*) FROM ids").fetchone()[0])

    def close(self):
        """Close this process's connection (a later use reopens it)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local = threading.local()


class _Closing:
    def __init__(self, conn):
        self.conn = conn

    def __enter__(self):
        return self.conn

    def __exit__(self, *exc):
        self.conn.close()


class _SQLiteTxn:
    _CHUNK = 500  # host parameters per statement stay under SQLite's limit

    def __init__(self, conn):
        self.conn = conn

    def width(self):
        row = self.conn.execute("SELECT code FROM ids LIMIT 1").fetchone()
        return None if row is None else len(row[0].split("-"))

    def meta(self, name):
        row = self.conn.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, name, value):
        self.conn.execute(
            "INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, str(value))
        )

    def _select(self, column, values, what):
        values = list(values)
        out = []
        for start in range(0, len(values), self._CHUNK):
            part = values[start : start + self._CHUNK]
            marks = ",".join("?" * len(part))
            out += self.conn.execute(
                f"SELECT {what} FROM ids WHERE {column} IN ({marks})", part
            ).fetchall()
        return out

    def get(self, keys):
        rows = self._select("key", keys, "key, code")
        return {k: tuple(int(c) for c in code.split("-")) for k, code in rows}

    def taken(self, groups):
        out = {}
        for grp, last in self._select("grp", groups, "grp, last"):
            out.setdefault(grp, []).append(last)
        return {g: np.asarray(v, dtype=np.int64) for g, v in out.items()}

    def insert(self, keys, codes):
        keys, codes = _check_insert(self, keys, codes)
        rows = [
            (key, _join(row), _join(row[:-1]), int(row[-1]))
            for key, row in zip(keys, codes.tolist(), strict=True)
        ]
        self.conn.executemany("INSERT INTO ids (key, code, grp, last) VALUES (?, ?, ?, ?)", rows)
