"""Maintenance scripts for the book (run from the repository root, e.g. ``python -m tools.strip_notebooks``)."""
