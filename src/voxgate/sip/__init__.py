"""voxgate.sip"""
