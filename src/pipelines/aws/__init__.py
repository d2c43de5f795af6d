"""Thin adapters over the Amazon provider's hooks: one module per AWS service."""
