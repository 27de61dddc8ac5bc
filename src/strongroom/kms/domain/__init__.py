"""Strongroom kms domain package."""
