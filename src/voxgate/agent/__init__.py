"""voxgate.agent: the in-process voice agent (STT -> LLM -> TTS with real turn-taking).

Pure, sans-I/O policies (time passed in, no asyncio), each testable alone:

- ``turns``: end of turn from VAD silence + how complete the words look;
- ``interruption``: when caller speech during the agent's reply is a barge-in;
- ``backchannel``: when to say "mm-hm" while the caller talks at length;
- ``chunker``: cut streaming LLM text into clauses for the TTS;
- ``intent``: early intent (speculate on a stable transcript, keep it only if the final agrees).

The per-call runtime built on them: ``pipeline.AgentPipeline`` (one per ``CallSession``) with
``inbound`` (resample + VAD), ``transcripts`` (STT results per turn), ``reply`` (one reply's
LLM/TTS task), ``floor`` (the reply the caller hears, barge-in, what was heard), ``speaker``
(sink writes and playback marks), ``history`` + ``store`` (conversation state, resumable),
``records`` (per-turn stage timings), ``config`` (settings). ``local.LocalCall`` and
``vclock`` run whole calls from WAV files, in real or virtual time; ``talk`` is
``voxgate talk``.

Kept import-free on purpose: the CLI imports ``voxgate.agent.talk`` at start-up.
"""
