"""Strongroom: a self-hosted key management service speaking the AWS KMS API."""

__all__ = ["__version__"]

__version__ = "0.1.0"
