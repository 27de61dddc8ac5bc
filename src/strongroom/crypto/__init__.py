"""Strongroom crypto package."""
