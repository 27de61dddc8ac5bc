"""Strongroom api package."""
