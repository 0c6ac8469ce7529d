"""The Substratus builder service."""
