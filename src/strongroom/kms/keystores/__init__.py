"""Strongroom kms keystores package."""
