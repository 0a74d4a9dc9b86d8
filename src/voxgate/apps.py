"""The applications a route can name, built from settings: the in-process agent and the
bridge to an external WebSocket app.

``AgentApp`` runs one :class:`~voxgate.agent.pipeline.AgentPipeline` per call on providers
shared by every call (models load once per process), and fans what the agent reports out to
the call observer (records, metrics, traces) and to the call's live event channel (the
WebRTC page's transcript and latency display).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from voxgate.agent.config import AgentSettings
from voxgate.agent.pipeline import AgentPipeline, AgentProviders
from voxgate.agent.records import TurnRecord
from voxgate.agent.store import ConversationStore
from voxgate.calls.echo import echo_factory
from voxgate.calls.router import AppFactory, CallApp, NoRoute, RouteRule
from voxgate.calls.session import CallSession
from voxgate.config import ProvidersSettings, Settings
from voxgate.errors import ConfigError
from voxgate.observability.observer import CallObserver
from voxgate.providers.base import LLM, TTS, StreamingSTT
from voxgate.providers.fallback import SwitchEvent
from voxgate.websocket.bridge import bridge_factory

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


def _publish(session: CallSession, event: dict[str, Any]) -> None:
    from voxgate.webrtc.events import publish

    publish(session, event)


class AgentApp:
    """``CallApp`` for routes whose app is ``"agent"``."""

    name = "agent"

    def __init__(
        self,
        providers: AgentProviders,
        settings: AgentSettings,
        store: ConversationStore | None = None,
        observer: CallObserver | None = None,
    ) -> None:
        self.providers = providers
        self.settings = settings
        self.store = store
        self.observer = observer

    async def run(self, session: CallSession) -> None:
        loop = asyncio.get_running_loop()
        observer = self.observer
        call_id = session.call_id

        def on_event(kind: str, data: dict[str, Any]) -> None:
            if kind == "turn_done":
                record: TurnRecord = data["record"]
                if observer is not None:
                    observer.turn_finished(call_id, record)
                stages = {k: (None if v is None else round(v * 1000)) for k, v in record.stages().items()}
                _publish(session, {"type": "turn", "index": record.index,
                                   "latency_ms": stages.get("voice_to_voice"), "stages": stages,
                                   "interrupted": record.interrupted_at is not None})
                return
            if kind == "transcript":
                if observer is not None and data.get("final", True):
                    observer.transcript(
                        call_id, str(data.get("role", "")), str(data.get("text", "")),
                        confidence=data.get("confidence"),
                    )
                _publish(session, {"type": "transcript", **data})
                return
            if observer is not None:
                observer.event(call_id, kind, data)

        pipeline = AgentPipeline(
            session,
            self.providers,
            self.settings,
            store=self.store,
            conversation_id=session.metadata.get("conversation_id") or None,
            clock=loop.time,
            on_event=on_event,
        )
        await pipeline.run()


def switch_metrics(kind: str) -> Callable[[SwitchEvent], None]:
    """Fallback-chain hook: count the failed provider and, when another takes over, a fallback."""

    def hook(event: SwitchEvent) -> None:
        from voxgate.observability.metrics import PROVIDER_ERRORS, PROVIDER_FALLBACKS

        PROVIDER_ERRORS.labels(kind=kind, provider=event.failed).inc()
        if event.next is not None:
            PROVIDER_FALLBACKS.labels(kind=kind).inc()

    return hook


def build_providers(cfg: ProvidersSettings, progress: Progress, observer: CallObserver | None) -> AgentProviders:
    """Load (once per process) and chain the providers named in config. Blocking: models load."""
    from voxgate.audio.vad import SileroVad, WebRtcVad
    from voxgate.providers.fallback import FallbackLLM, FallbackSTT, FallbackTTS
    from voxgate.providers.registry import build_llm, build_stt, build_tts, load_embedded

    wants = {
        "stt": "embedded" in cfg.stt,
        "llm": "embedded" in cfg.llm,
        "tts": "embedded" in cfg.tts,
    }
    if any(wants.values()):
        load_embedded(progress, whisper_model=cfg.whisper_model, **wants)

    def llm_options(name: str) -> dict[str, Any]:
        if name != "openai":
            return {}
        o = cfg.openai
        return {
            "base_url": o.base_url,
            "model": o.model,
            "api_key": o.api_key.get_secret_value() if o.api_key else None,
        }

    stts: list[StreamingSTT] = [
        build_stt(n, **({"model": cfg.whisper_model} if n == "embedded" else {})) for n in cfg.stt
    ]
    llms: list[LLM] = [build_llm(n, **llm_options(n)) for n in cfg.llm]
    ttss: list[TTS] = [build_tts(n) for n in cfg.tts]
    stt: StreamingSTT = stts[0] if len(stts) == 1 else FallbackSTT(
        stts, timeout=cfg.timeout_s, on_switch=switch_metrics("stt"))
    llm: LLM = llms[0] if len(llms) == 1 else FallbackLLM(
        llms, timeout=cfg.timeout_s, on_switch=switch_metrics("llm"))
    tts: TTS = ttss[0] if len(ttss) == 1 else FallbackTTS(
        ttss, timeout=cfg.timeout_s, on_switch=switch_metrics("tts"))
    vad_factory: Callable[[], Any] = (lambda: SileroVad(16000)) if cfg.vad == "silero" else WebRtcVad
    return AgentProviders(stt, llm, tts, vad_factory)


NamedAgents = dict[str, tuple[AgentProviders, AgentSettings]]


def build_named_agents(settings: Settings, providers: AgentProviders) -> NamedAgents:
    """Agents routes name as ``agent:NAME`` (tools, knowledge base, rules of their own).

    Built once at start-up (blocking: knowledge bases are indexed). ``receptionist`` is the
    reference app in ``examples/receptionist`` (importable when serving from the repository).
    """
    names = sorted({r.app.split(":", 1)[1] for r in settings.routes if r.app.startswith("agent:")})
    out: NamedAgents = {}
    for name in names:
        if name != "receptionist":
            raise ConfigError(f"route names unknown agent {name!r}; known: receptionist")
        try:
            from examples.receptionist.app import Receptionist
        except ImportError as exc:
            raise ConfigError(
                "agent:receptionist lives in the repository's examples/ folder: serve from "
                f"the repository root or put it on PYTHONPATH ({exc})"
            ) from None
        data = settings.records.recordings_dir.parent
        data.mkdir(parents=True, exist_ok=True)
        rec = Receptionist.create(db=data / "appointments.db", kb_db=data / "knowledge.db")
        out[name] = (rec.providers(providers), rec.settings)
    return out


def app_factories(
    settings: Settings,
    providers: AgentProviders | None,
    store: ConversationStore | None,
    observer: CallObserver | None,
    named: NamedAgents | None = None,
) -> dict[str, AppFactory]:
    factories: dict[str, AppFactory] = {
        "websocket": bridge_factory(settings.websocket),
        "echo": echo_factory,
    }
    if providers is not None:
        default = AgentApp(providers, settings.agent, store, observer)
        agents = {
            name: AgentApp(p, s, store, observer) for name, (p, s) in (named or {}).items()
        }

        def agent_factory(rule: RouteRule) -> CallApp:
            _, _, name = rule.app.partition(":")
            if not name:
                return default
            if name not in agents:  # a call that asked for an agent this node does not have
                raise NoRoute(f"unknown agent {name!r}; known: {sorted(agents) or 'none'}")
            return agents[name]

        factories["agent"] = agent_factory
    return factories
