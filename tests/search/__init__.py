"""Tests of sksemantic.search."""
