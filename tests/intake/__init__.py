"""Tests for annotate/intake/."""
