"""Semantic IDs: strings from codes, unique and stable assignment, stores, prefix index."""

from ._format import codes_to_strings, level_letter, strings_to_codes

__all__ = ["codes_to_strings", "level_letter", "strings_to_codes"]
