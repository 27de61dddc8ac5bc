"""Strongroom kms ops package."""
