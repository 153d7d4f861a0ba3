"""The run layer: prompts, parsing, the engine and its cache, prices, progress, one run end to end
(runner), replaying published files, and sweeps. Package data: `prices.toml`."""
