"""Tests for annotate/app/."""
