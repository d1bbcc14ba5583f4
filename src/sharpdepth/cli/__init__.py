"""Command-line interface of sharpdepth."""
