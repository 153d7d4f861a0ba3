"""Adapters: one file per backend, registered by name (see base.py)."""
