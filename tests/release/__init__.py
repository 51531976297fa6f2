"""Tests for annotate/release/."""
