"""dpgkit's version, in a module of its own so that any module can read it without importing
the whole package (checkpoints and summaries record it)."""

__version__ = "0.1.0"
