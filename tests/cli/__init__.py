"""Tests of the sksemantic command line."""
