"""Semantic IDs: strings from codes, unique and stable assignment, stores, prefix index.

- :func:`codes_to_strings` / :func:`strings_to_codes`: plain (``"3-9-1"``) and LLM token
  (``"<a_3><b_9><c_1>"``) formats.
- :class:`SemanticIdAssigner`: unique (collision counter, nearest free code, Sinkhorn,
  or none) and stable (keyed by item) IDs from a fitted residual encoder.
- :class:`InMemoryIDStore` and :class:`SQLiteIDStore`: where assignments persist.
- :class:`PrefixIndex`: valid next codes after a prefix, for constrained decoding.
"""

from ._assign import UNIQUENESS, SemanticIdAssigner
from ._format import codes_to_strings, level_letter, strings_to_codes
from ._prefix import PrefixIndex
from ._stores import BaseIDStore, InMemoryIDStore, SQLiteIDStore

__all__ = [
    "UNIQUENESS",
    "BaseIDStore",
    "InMemoryIDStore",
    "PrefixIndex",
    "SQLiteIDStore",
    "SemanticIdAssigner",
    "codes_to_strings",
    "level_letter",
    "strings_to_codes",
]
