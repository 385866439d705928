"""covcall: research workbench for crypto covered calls."""
