"""voxgate.observability"""
