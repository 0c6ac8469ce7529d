"""The Substratus uploader service."""
