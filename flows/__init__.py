"""Prefect flows: one module per integration, each reading like its step list."""
