"""The Substratus watcher service."""
