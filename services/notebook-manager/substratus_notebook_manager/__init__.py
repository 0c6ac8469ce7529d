"""The Substratus notebook-manager service."""
