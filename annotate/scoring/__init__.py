"""Scoring (the harness side): predictions against a release, figures and plots, inspect_ai."""
