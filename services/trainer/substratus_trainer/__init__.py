"""The Substratus trainer service."""
