"""Tests for annotate/cli/."""
