"""Strongroom storage package."""
