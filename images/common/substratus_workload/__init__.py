"""Shared code of the reference workload images (images/*): the container contract and a tiny
character-level n-gram language model. Copied into every image at /opt/substratus."""
