"""Strongroom kms package."""
