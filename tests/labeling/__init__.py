"""Tests for annotate/labeling/."""
