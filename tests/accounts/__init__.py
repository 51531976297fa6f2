"""Tests for annotate/accounts/."""
