"""The Substratus server-manager service."""
