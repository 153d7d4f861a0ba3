"""The data layer: the data directory and its pinned files, tables, datasets, annotated material and
sampling. Package data: `manifest.json`, the pinned upstream files."""
