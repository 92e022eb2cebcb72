"""Tests of sksemantic.neighbors."""
