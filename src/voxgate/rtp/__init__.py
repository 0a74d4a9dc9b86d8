"""voxgate.rtp"""
