"""Tests for annotate/storage/."""
