"""Tests of sksemantic.cluster."""
