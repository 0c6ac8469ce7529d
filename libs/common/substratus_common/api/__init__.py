"""substratus_common.api"""
