"""voxgate.providers"""
