"""Tests of sksemantic.metrics."""
