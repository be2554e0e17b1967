"""Workspaces: notebooks and editors with exactly the datasets their owner's grants cover (docs/workspaces.md)."""
