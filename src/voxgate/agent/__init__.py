"""voxgate.agent"""
