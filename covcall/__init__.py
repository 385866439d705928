"""covcall: research workbench for crypto covered calls."""

__version__ = "0.1.0"
