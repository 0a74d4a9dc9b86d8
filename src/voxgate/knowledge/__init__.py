"""voxgate.knowledge: what an agent can do and look up mid-call.

- ``tools``: typed async functions as LLM tools (schema, validation, filler/timeout policy);
- ``calltools``: built-in ``transfer_call``/``end_call``/``send_dtmf``/``hold``;
- ``rules``: per-route opening hours, transfer targets, escalation phrases, PII redaction;
- ``embeddings``/``ingest``/``rag``: the local knowledge base (MiniLM in numpy, SQLite);
- ``runtime``: ``Knowledge`` (per agent) and ``CallKnowledge`` (per call), what the agent
  pipeline calls; attach with ``AgentProviders(..., knowledge=Knowledge(...))``;
- ``cli``: ``voxgate kb add|search``.

Modules are imported directly (``from voxgate.knowledge.tools import tool``) so that using
tools does not load numpy/SQLite code it does not need.
"""
