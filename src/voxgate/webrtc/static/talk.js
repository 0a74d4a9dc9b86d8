// voxgate talk page: one WebRTC call to the agent, no framework, no build step.
// Signaling is a single POST (non-trickle ICE): we wait for our own gathering to finish so
// the offer carries every candidate, and the answer carries every server candidate.
// window.voxgate exposes the call's measurements so tests (and curious people) can read them.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const SPEECH_RMS = 0.02;        // level above which a side counts as speaking
  const SPEECH_HANGOVER_MS = 400; // quiet this long before "stopped speaking"

  const state = (window.voxgate = {
    state: "idle", callId: null, codec: null, reason: null, error: null,
    offerMs: null, answerMs: null, connectedMs: null, firstAudioMs: null, webAudio: null,
    localRms: 0, remoteRms: 0, maxLocalRms: 0, maxRemoteRms: 0,
    transcript: [], turns: [], events: [],
  });

  let pc = null, channel = null, mic = null, audioCtx = null, meterTimer = null, t0 = 0;
  let token = params.get("token") || sessionStorage.getItem("voxgate_token") || "";
  $("token").value = token;
  $("room").value = params.get("room") || "";
  if (params.get("token")) history.replaceState(null, "", location.pathname); // keep it out of the history

  function setStatus(s, text) {
    state.state = s;
    const el = $("status");
    el.dataset.state = s;
    el.textContent = text || s;
  }

  function headers() {
    return { "Content-Type": "application/json", Authorization: "Bearer " + token };
  }

  function waitGathered(peer) {
    if (peer.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => {
        if (peer.iceGatheringState === "complete") {
          peer.removeEventListener("icegatheringstatechange", check);
          resolve();
        }
      };
      peer.addEventListener("icegatheringstatechange", check);
      setTimeout(resolve, 3000); // some networks never finish; send what we have
    });
  }

  function preferCodec(transceiver) {
    const want = (params.get("codec") || "").toLowerCase();
    if (!want || !transceiver.setCodecPreferences || !RTCRtpReceiver.getCapabilities) return;
    const caps = RTCRtpReceiver.getCapabilities("audio").codecs;
    const chosen = caps.filter((c) => c.mimeType.toLowerCase() === "audio/" + want);
    if (chosen.length) transceiver.setCodecPreferences(chosen);
  }

  function rmsOf(analyser, buf) {
    analyser.getFloatTimeDomainData(buf);
    let sum = 0;
    for (let i = 0; i < buf.length; i++) sum += buf[i] * buf[i];
    return Math.sqrt(sum / buf.length);
  }

  // Who is speaking, and the latency of every turn as this page hears it: from the end of
  // the caller's speech (mic level quiet for SPEECH_HANGOVER_MS) to the first agent audio.
  // Where WebAudio cannot run (no audio output device: headless Firefox, some kiosks) the
  // AudioContext stays suspended; the remote level then comes from RTP statistics instead
  // (totalAudioEnergy / totalSamplesDuration over the last 100 ms).
  let statsLevel = 0, lastEnergy = null, statsTimer = null;
  async function pollStatsLevel() {
    if (!pc) return;
    const stats = await pc.getStats();
    stats.forEach((r) => {
      if (r.type !== "inbound-rtp" || r.kind !== "audio" || r.totalAudioEnergy === undefined) return;
      if (lastEnergy && r.totalSamplesDuration > lastEnergy.d) {
        statsLevel = Math.sqrt((r.totalAudioEnergy - lastEnergy.e) / (r.totalSamplesDuration - lastEnergy.d));
      }
      lastEnergy = { e: r.totalAudioEnergy, d: r.totalSamplesDuration };
    });
  }

  function startMeters(localStream, remoteStream) {
    audioCtx.resume();
    state.webAudio = audioCtx.state;
    lastEnergy = null; statsLevel = 0;
    statsTimer = setInterval(() => { if (audioCtx && audioCtx.state !== "running") pollStatsLevel().catch(() => {}); }, 100);
    const mk = (stream) => {
      const a = audioCtx.createAnalyser();
      a.fftSize = 1024;
      audioCtx.createMediaStreamSource(stream).connect(a);
      return a;
    };
    const local = mk(localStream), remote = mk(remoteStream);
    const buf = new Float32Array(1024);
    const side = { you: { on: false, last: 0 }, agent: { on: false, last: 0 } };
    let callerSpokeSince = false;
    meterTimer = setInterval(() => {
      const now = performance.now();
      const live = audioCtx && audioCtx.state === "running";
      const l = live && mic && mic.enabled ? rmsOf(local, buf) : 0;
      const r = live ? rmsOf(remote, buf) : statsLevel;
      state.localRms = l; state.remoteRms = r;
      state.maxLocalRms = Math.max(state.maxLocalRms, l);
      state.maxRemoteRms = Math.max(state.maxRemoteRms, r);
      $("you-level").value = l; $("agent-level").value = r;
      if (r > SPEECH_RMS && state.firstAudioMs === null) state.firstAudioMs = now - t0;
      for (const [name, level] of [["you", l], ["agent", r]]) {
        const s = side[name];
        if (level > SPEECH_RMS) {
          // Agent audio starts after the caller spoke and then paused: one turn. (Measured
          // from the last loud mic sample, so it works even if the reply starts before the
          // "you" light's hangover ends; overlapping speech (a backchannel) is not a turn.)
          if (!s.on && name === "agent" && callerSpokeSince && now - side.you.last > 100) {
            addTurn("heardMs", Math.round(now - side.you.last));
            callerSpokeSince = false;
          }
          if (!s.on && name === "you") callerSpokeSince = true;
          s.on = true; s.last = now;
        } else if (s.on && now - s.last > SPEECH_HANGOVER_MS) {
          s.on = false;
        }
        $(name).classList.toggle("speaking", s.on);
      }
    }, 20);
  }

  // The page's own measurement and the agent's report of the same turn arrive in either
  // order (the report usually first: it leaves before the audio is heard); pair them in order.
  function addTurn(field, value) {
    const open = state.turns.find((t) => t[field] === undefined);
    if (open) open[field] = value; else state.turns.push({ [field]: value });
    renderTurns();
  }

  function renderTurns() {
    const body = $("turns").querySelector("tbody");
    body.textContent = "";
    state.turns.forEach((t, i) => {
      const tr = document.createElement("tr");
      for (const v of [i + 1, t.heardMs ?? "–", t.reportedMs ?? "–"]) {
        const td = document.createElement("td");
        td.textContent = v;
        tr.appendChild(td);
      }
      body.appendChild(tr);
    });
  }

  function onTranscript(ev) {
    const list = $("transcript");
    const role = ev.role === "agent" ? "agent" : "caller";
    let li = list.lastElementChild;
    if (!(li && li.classList.contains("partial") && li.classList.contains(role))) {
      li = document.createElement("li");
      li.className = role;
      list.appendChild(li);
    }
    li.classList.toggle("partial", !ev.final);
    li.textContent = "";
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = role === "agent" ? "Agent" : "You";
    li.append(who, document.createTextNode(ev.text || ""));
    list.scrollTop = list.scrollHeight;
    if (ev.final) state.transcript.push({ role, text: ev.text || "" });
  }

  function onEvent(ev) {
    state.events.push(ev);
    if (ev.type === "transcript") onTranscript(ev);
    else if (ev.type === "speaking" && ev.role === "agent") $("agent").classList.toggle("speaking", !!ev.speaking);
    else if (ev.type === "turn") addTurn("reportedMs", Math.round(ev.latency_ms));
    else if (ev.type === "call" && ev.state === "ended") finish(ev.reason || "ended", false);
  }

  async function call() {
    token = $("token").value.trim();
    if (!token) { setStatus("error", "enter the API token"); return; }
    sessionStorage.setItem("voxgate_token", token);
    $("call").disabled = true;
    setStatus("connecting", "connecting…");
    Object.assign(state, { reason: null, error: null, firstAudioMs: null, maxRemoteRms: 0, maxLocalRms: 0 });
    // Created synchronously in the click's task, so autoplay policies let it run.
    audioCtx = new (window.AudioContext || window.webkitAudioContext)();
    try {
      const raw = params.get("raw") === "1"; // fidelity tests: no browser voice processing
      const stream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: !raw, noiseSuppression: !raw, autoGainControl: !raw },
      });
      mic = stream.getAudioTracks()[0];
      t0 = performance.now();
      pc = new RTCPeerConnection({ iceServers: [] });
      const remoteStream = new MediaStream();
      pc.ontrack = (e) => {
        remoteStream.addTrack(e.track);
        $("remote").srcObject = remoteStream; // Chromium feeds WebAudio only if an element plays it too
        startMeters(stream, remoteStream);
      };
      pc.onconnectionstatechange = () => {
        if (pc.connectionState === "connected") {
          if (state.connectedMs === null) state.connectedMs = performance.now() - t0;
          setStatus("connected");
        } else if (pc.connectionState === "failed") finish("ice_failed", true);
      };
      channel = pc.createDataChannel("events");
      channel.onmessage = (m) => { try { onEvent(JSON.parse(m.data)); } catch (e) { /* not ours */ } };
      preferCodec(pc.addTransceiver(mic, { direction: "sendrecv", streams: [stream] }));
      state.connectedMs = null;
      await pc.setLocalDescription(await pc.createOffer());
      await waitGathered(pc);
      state.offerMs = performance.now() - t0;
      const res = await fetch("/webrtc/offer", {
        method: "POST", headers: headers(),
        body: JSON.stringify({ sdp: pc.localDescription.sdp, type: "offer", room: $("room").value.trim() }),
      });
      if (!res.ok) throw new Error("signaling: HTTP " + res.status + " " + (await res.text()));
      const answer = await res.json();
      state.answerMs = performance.now() - t0;
      state.callId = answer.call_id;
      state.codec = answer.codec;
      await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
      $("mute").disabled = false;
      $("hangup").disabled = false;
    } catch (err) {
      state.error = String(err && err.message || err);
      finish("error", true);
      setStatus("error", state.error);
    }
  }

  function toggleMute() {
    if (!mic) return;
    mic.enabled = !mic.enabled; // the track keeps sending silence, so the server sees no drop
    $("mute").setAttribute("aria-pressed", String(!mic.enabled));
    $("mute").textContent = mic.enabled ? "Mute" : "Unmute";
  }

  // Tell the server (data channel and HTTP, whichever arrives first) and release everything.
  function finish(reason, notifyServer) {
    if (!pc) return;
    if (notifyServer && state.callId) {
      try { channel && channel.readyState === "open" && channel.send(JSON.stringify({ type: "hangup" })); } catch (e) { /* closing */ }
      fetch("/webrtc/hangup", {
        method: "POST", headers: headers(), keepalive: true,
        body: JSON.stringify({ call_id: state.callId }),
      }).catch(() => {});
    }
    clearInterval(meterTimer);
    clearInterval(statsTimer);
    if (audioCtx) audioCtx.close();
    if (mic) mic.stop();
    pc.close();
    pc = channel = mic = audioCtx = null;
    state.reason = reason;
    setStatus("ended", "ended: " + reason);
    $("call").disabled = false;
    $("mute").disabled = true;
    $("hangup").disabled = true;
  }

  $("call").addEventListener("click", call);
  $("mute").addEventListener("click", toggleMute);
  $("hangup").addEventListener("click", () => finish("caller_hangup", true));
  window.addEventListener("pagehide", () => finish("caller_hangup", true));
})();
