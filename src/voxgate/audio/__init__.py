"""Pure audio code: frames, codecs, resampling, VAD, WAV files. No sockets, no event loop."""

from voxgate.audio.codec import CodecError, Decoder, Encoder
from voxgate.audio.codecs import CODEC_NAMES, get_decoder, get_encoder
from voxgate.audio.frame import FRAME_MS, AudioFrame, Pcm16
from voxgate.audio.g711 import (
    PcmaDecoder,
    PcmaEncoder,
    PcmuDecoder,
    PcmuEncoder,
    alaw_decode,
    alaw_encode,
    ulaw_decode,
    ulaw_encode,
)
from voxgate.audio.plc import PitchConcealer
from voxgate.audio.resample import StreamResampler
from voxgate.audio.vad import SileroVad, VoiceActivityDetector, WebRtcVad
from voxgate.audio.wav import WavFormatError, frames_from_pcm, read_wav, write_wav

__all__ = [
    "CODEC_NAMES",
    "FRAME_MS",
    "AudioFrame",
    "CodecError",
    "Decoder",
    "Encoder",
    "PcmaDecoder",
    "PcmaEncoder",
    "PcmuDecoder",
    "PcmuEncoder",
    "Pcm16",
    "PitchConcealer",
    "SileroVad",
    "StreamResampler",
    "VoiceActivityDetector",
    "WavFormatError",
    "WebRtcVad",
    "alaw_decode",
    "alaw_encode",
    "frames_from_pcm",
    "get_decoder",
    "get_encoder",
    "read_wav",
    "ulaw_decode",
    "ulaw_encode",
    "write_wav",
]
