"""substratus_common.events"""
