"""The Substratus status-writer service."""
