"""Semantic-ID strings from integer codes and back: plain ("3-9-1") and token ("<a_3><b_9><c_1>")."""

import re
from numbers import Integral

import numpy as np

from ..utils import check_int_codes

__all__ = ["codes_to_strings", "strings_to_codes", "level_letter"]

FORMATS = ("plain", "token")
_TOKEN = re.compile(r"<([a-z]+)_(\d+)>")


def level_letter(level):
    """Letter(s) naming a level in the token format: a, b, ..., z, aa, ab, ...

    Parameters
    ----------
    level : int
        Level number, from 0 (the first level).

    Returns
    -------
    letters : str

    Examples
    --------
    >>> from sksemantic.ids import level_letter
    >>> [level_letter(i) for i in (0, 1, 25, 26, 27)]
    ['a', 'b', 'z', 'aa', 'ab']
    """
    if isinstance(level, bool) or not isinstance(level, Integral):
        raise TypeError(f"level must be an int, got {type(level).__name__} {level!r}.")
    if level < 0:
        raise ValueError(f"level must be >= 0 (0 is the first level), got {level}.")
    letters = ""
    level = int(level) + 1
    while level:
        level, rem = divmod(level - 1, 26)
        letters = chr(ord("a") + rem) + letters
    return letters


def _check_format(fmt, sep):
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}.")
    if fmt == "plain" and (not isinstance(sep, str) or not sep or sep.isdigit()):
        raise ValueError(f"sep must be a non-empty string without digits, got {sep!r}.")


def codes_to_strings(codes, *, fmt="plain", sep="-"):
    """Semantic-ID strings of integer codes.

    Parameters
    ----------
    codes : array-like of shape (n_items, n_levels)
        Non-negative integer codes, one column per level.
    fmt : {"plain", "token"}, default="plain"
        ``"plain"``: codes joined by ``sep`` (``"3-9-1"``). ``"token"``: one
        ``<letter_code>`` token per level, the LLM-vocabulary form (``"<a_3><b_9><c_1>"``).
    sep : str, default="-"
        Separator of the plain format.

    Returns
    -------
    ids : ndarray of shape (n_items,), dtype object
        Empty for codes of shape (0, n_levels).

    Examples
    --------
    >>> from sksemantic.ids import codes_to_strings
    >>> codes_to_strings([[3, 9, 1], [0, 5, 7]]).tolist()
    ['3-9-1', '0-5-7']
    >>> codes_to_strings([[3, 9, 1]], fmt="token").tolist()
    ['<a_3><b_9><c_1>']
    """
    _check_format(fmt, sep)
    codes = check_int_codes(codes, ensure_min_samples=0)
    if codes.size and codes.min() < 0:
        raise ValueError("codes must be non-negative.")
    text = codes.astype(str)
    if fmt == "plain":
        out = text[:, 0].astype(object)
        for level in range(1, codes.shape[1]):
            out = out + sep + text[:, level].astype(object)
        return out
    out = np.full(codes.shape[0], "", dtype=object)
    for level in range(codes.shape[1]):
        out = out + f"<{level_letter(level)}_" + text[:, level].astype(object) + ">"
    return out


def strings_to_codes(ids, *, fmt="plain", sep="-", n_levels=None):
    """Integer codes from semantic-ID strings; the inverse of :func:`codes_to_strings`.

    Parameters
    ----------
    ids : str or array-like of str
        Semantic IDs, all with the same number of levels.
    fmt : {"plain", "token"}, default="plain"
        Format of the strings.
    sep : str, default="-"
        Separator of the plain format.
    n_levels : int, default=None
        Expected number of levels; checked when given. It also gives the width of the
        result for no strings, ``(0, n_levels)``, which is an error without it.

    Returns
    -------
    codes : ndarray of shape (n_items, n_levels), dtype int64

    Raises
    ------
    ValueError
        For a malformed string (naming it and its position), levels out of order in the
        token format, or a number of levels that differs between strings or from
        ``n_levels``.

    Examples
    --------
    >>> from sksemantic.ids import strings_to_codes
    >>> strings_to_codes(["3-9-1", "0-5-7"]).tolist()
    [[3, 9, 1], [0, 5, 7]]
    >>> strings_to_codes("<a_3><b_9><c_1>", fmt="token").tolist()
    [[3, 9, 1]]
    """
    _check_format(fmt, sep)
    if isinstance(ids, str):
        ids = [ids]
    ids = list(np.asarray(ids, dtype=object).ravel()) if not isinstance(ids, list) else ids
    if n_levels is not None and (
        isinstance(n_levels, bool) or not isinstance(n_levels, Integral) or n_levels < 1
    ):
        raise ValueError(f"n_levels must be an int >= 1, got {n_levels!r}.")
    if not ids:
        if n_levels is not None:
            return np.zeros((0, n_levels), dtype=np.int64)
        raise ValueError(
            "ids is empty: at least one semantic ID is needed (or n_levels, for the width "
            "of an empty result)."
        )
    rows = []
    for i, s in enumerate(ids):
        if not isinstance(s, str):
            raise TypeError(f"ids[{i}] must be a str, got {type(s).__name__}.")
        rows.append(_parse_plain(s, i, sep) if fmt == "plain" else _parse_token(s, i))
    widths = {len(r) for r in rows}
    if len(widths) > 1:
        raise ValueError(
            f"ids have different numbers of levels {sorted(widths)}; semantic IDs of one "
            "encoder all have the same width."
        )
    width = widths.pop()
    if n_levels is not None and width != n_levels:
        raise ValueError(f"ids have {width} levels; expected {n_levels}.")
    return np.asarray(rows, dtype=np.int64).reshape(len(rows), width)


def _parse_plain(s, i, sep):
    parts = s.split(sep)
    if not all(p.isdigit() and p.isascii() for p in parts):
        raise ValueError(
            f"Malformed semantic ID ids[{i}] = {s!r}: expected non-negative integers "
            f"separated by {sep!r}, e.g. '3{sep}9{sep}1'."
        )
    return [int(p) for p in parts]


def _parse_token(s, i):
    tokens = _TOKEN.findall(s)
    if not tokens or "".join(f"<{a}_{b}>" for a, b in tokens) != s:
        raise ValueError(
            f"Malformed semantic ID ids[{i}] = {s!r}: expected tokens like '<a_3><b_9><c_1>'."
        )
    for level, (letters, _) in enumerate(tokens):
        if letters != level_letter(level):
            raise ValueError(
                f"Malformed semantic ID ids[{i}] = {s!r}: token {level} is "
                f"<{letters}_...>, expected <{level_letter(level)}_...>."
            )
    return [int(code) for _, code in tokens]
