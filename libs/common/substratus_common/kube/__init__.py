"""substratus_common.kube"""
