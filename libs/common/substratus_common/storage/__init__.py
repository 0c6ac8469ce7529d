"""substratus_common.storage"""
