"""Strongroom kms api package."""
