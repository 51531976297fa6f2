"""Tests for annotate/stats/."""
