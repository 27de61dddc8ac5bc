"""Strongroom hsm package."""
