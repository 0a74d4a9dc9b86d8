"""voxgate.webrtc"""
