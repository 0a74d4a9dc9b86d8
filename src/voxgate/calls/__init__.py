"""voxgate.calls"""
