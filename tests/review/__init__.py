"""Tests for annotate/review/."""
