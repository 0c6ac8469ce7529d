"""substratus_common.bus"""
