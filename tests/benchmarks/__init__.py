"""Tests of the machinery of the benchmarks in bench/."""
