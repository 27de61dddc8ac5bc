"""The crypto layer: the only package of Strongroom that imports ``cryptography.hazmat``.

Everything else calls the small, vetted recipes of its modules.
"""
