"""Tests of sksemantic.datasets."""
