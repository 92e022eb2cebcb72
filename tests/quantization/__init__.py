"""Tests of sksemantic.quantization."""
