"""voxgate.knowledge"""
