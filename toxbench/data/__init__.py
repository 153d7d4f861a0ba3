"""Package data: the pinned manifest of upstream data files."""
