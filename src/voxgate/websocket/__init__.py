"""voxgate.websocket"""
