"""voxgate: self-hosted media streaming layer and agent runtime for real-time voice AI."""

__version__ = "0.1.0"
