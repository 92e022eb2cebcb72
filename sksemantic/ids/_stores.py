"""Where assigned semantic IDs live: an in-memory store and a SQLite store.

A store maps an item key (a string) to its ID, a fixed-width tuple of integer codes,
and answers the two questions uniqueness needs inside one transaction: which keys are
already assigned, and which last-level codes are taken under a group (the ID without
its last code). :class:`SQLiteIDStore` runs every batch in one ``BEGIN IMMEDIATE``
transaction, so concurrent writers from several processes are serialised by SQLite's
write lock, a batch is committed whole or not at all, and a crash loses no batch that
was committed before it.
"""

import os
import sqlite3
import threading
from contextlib import contextmanager

import numpy as np

__all__ = ["BaseIDStore", "InMemoryIDStore", "SQLiteIDStore"]


def _join(row):
    return "-".join(str(int(c)) for c in row)


class BaseIDStore:
    """Interface of ID stores. ``transaction()`` yields an object with the methods below.

    - ``meta(name) -> str or None`` and ``set_meta(name, value)``: settings bound to
      the store (the ID width and uniqueness policy), checked on every assignment.
    - ``get(keys) -> dict``: key -> tuple of codes, for the keys already assigned.
    - ``taken(groups) -> dict``: group string -> ndarray of the last-level codes taken.
    - ``insert(keys, codes)``: record new assignments.
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
        ids = self.store._ids
        return {k: ids[k] for k in keys if k in ids}

    def taken(self, groups):
        out = {}
        for g in groups:
            codes = self.store._groups.get(g)
            if codes:
                out[g] = np.fromiter(codes, dtype=np.int64)
        return out

    def insert(self, keys, codes):
        for key, row in zip(keys, codes, strict=True):
            self.new[key] = tuple(int(c) for c in row)

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
        Database file; created with its tables when missing.
    timeout : float, default=60.0
        Seconds a writer waits for another's transaction to finish.

    Examples
    --------
    >>> import os, tempfile
    >>> from sksemantic.ids import SQLiteIDStore
    >>> path = os.path.join(tempfile.mkdtemp(), "ids.sqlite")
    >>> store = SQLiteIDStore(path)
    >>> with store.transaction() as txn:
    ...     txn.insert(["item-1"], [(3, 9, 1)])
    >>> with SQLiteIDStore(path).transaction() as txn:  # a new connection sees it
    ...     txn.get(["item-1"])
    {'item-1': (3, 9, 1)}
    """

    def __init__(self, path, *, timeout=60.0):
        self.path = os.fspath(path)
        self.timeout = float(timeout)
        self._local = threading.local()
        with self._connect_new() as conn:
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

    def _connect_new(self):
        conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        conn.execute("PRAGMA synchronous=NORMAL")
        return _Closing(conn)

    def _conn(self):
        # One connection per process and thread: sqlite3 connections must not cross forks.
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            local.conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
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
        rows = [
            (key, _join(row), _join(row[:-1]), int(row[-1]))
            for key, row in zip(keys, codes, strict=True)
        ]
        self.conn.executemany("INSERT INTO ids (key, code, grp, last) VALUES (?, ?, ?, ?)", rows)
