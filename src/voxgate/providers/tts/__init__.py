"""TTS providers: embedded default, hosted adapters and a scriptable fake (``fake.py``)."""
