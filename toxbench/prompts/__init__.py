"""Prompt sets shipped as data: one TOML file per prompt, plus templates the release lacks."""
