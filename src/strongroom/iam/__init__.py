"""Strongroom iam package."""
