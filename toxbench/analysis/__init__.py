"""The analysis layer: pure functions of run records (metrics and their cache, paired comparisons,
leaderboards, the HTML report, sweep sensitivity tables and plots, run summaries)."""
