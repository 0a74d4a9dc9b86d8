"""Pure audio code: frames, codecs, resampling, VAD, WAV files. No sockets, no event loop."""

from voxgate.audio.frame import FRAME_MS, AudioFrame

__all__ = ["FRAME_MS", "AudioFrame"]
