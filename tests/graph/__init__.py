"""Tests of sksemantic.graph."""
