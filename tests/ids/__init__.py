"""Tests of sksemantic.ids."""
