"""Composed search: "like this, but ..." (AMMR)."""
