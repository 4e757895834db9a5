"""Subcommands of the `hepx` CLI that belong to the core."""
