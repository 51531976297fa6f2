"""Right-action labeling for LLM safety evaluation."""

__version__ = "0.1.0"
