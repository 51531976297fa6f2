"""Tests for annotate/scoring/."""
