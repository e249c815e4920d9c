"""Vendome: recommendations for luxury, fashion and jewelry retail."""
__version__ = "0.1.0"
