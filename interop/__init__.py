"""Interoperability with other metadata systems (Apache Atlas)."""
