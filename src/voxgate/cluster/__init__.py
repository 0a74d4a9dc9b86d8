"""voxgate.cluster"""
