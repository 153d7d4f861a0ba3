"""Adapters: the contract (base.py), the lazy registry (registry.py), what API and local adapters
share (_sdk.py, _local.py), and one file per backend."""
