"""voxgate.api"""
