"""The harness: datasets, records, metrics and the leaderboard (computed from records only)."""
