// The duplex browser page: wires the microphone, the socket and the display.
// Speaks docs/protocol.md (duplex/1) and nothing else.
import { ACCEPTED_RATES, AudioIO } from "./audio.js";
import { Connection, socketUrl } from "./connection.js";

const $ = (id) => document.getElementById(id);
const REPORT_MS = 100; // output_audio_buffer.playback period
const STATE_WORDS = {
  idle: "Idle", listening: "Listening", user_speaking: "You are speaking",
  thinking: "Thinking…", speaking: "Agent speaking", paused: "Agent paused (you spoke)",
};

// Test and debugging hooks: everything the page knows, readable from outside.
const hooks = (window.duplex = {
  connection: "idle", state: "idle", ready: false, sampleRate: 0, outputRate: 0,
  framesSent: 0, playedSamples: 0, playedMs: {}, bufferedMs: 0,
  transcript: "", partial: "", agentText: "", userTurns: [], agentTurns: [],
  turn: null, latency: [], stopLatency: [], flushes: [], truncates: [], errors: [], events: [],
});

let conn = null;
let audio = null;
let audioRid = null; // the response whose audio is arriving; null drops stray audio
let muted = false;
let lastReport = { rid: null, at: 0, played: 0 };
let t0 = performance.now();
const entries = new Map(); // item or response id -> log entry
const itemToResponse = new Map();

// ------------------------------------------------------------------ display
function setConnection(kind, words) {
  hooks.connection = kind;
  const el = $("connection");
  el.className = `pill ${kind}`;
  el.textContent = words;
}

function setState(state) {
  hooks.state = state;
  $("indicator").className = `indicator ${state}`;
  $("state-label").textContent = STATE_WORDS[state] || state;
}

function showError(words) {
  hooks.errors.push(words);
  const el = $("error");
  el.textContent = words;
  el.hidden = false;
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

function entry(id, who) {
  let e = entries.get(id);
  if (!e) {
    const li = document.createElement("li");
    li.className = who;
    li.innerHTML = `<span class="who">${who === "user" ? "You" : "Agent"}</span>` +
                   `<span class="text"></span><span class="unheard"></span><span class="note"></span>`;
    $("log").appendChild(li);
    e = { li, text: "" };
    entries.set(id, e);
    li.scrollIntoView({ block: "nearest" });
  }
  return e;
}

function setText(e, text, unheard = "") {
  e.li.querySelector(".text").textContent = text;
  e.li.querySelector(".unheard").textContent = unheard;
}

function note(e, words) {
  e.li.querySelector(".note").textContent = words;
}

function updateTranscriptHooks() {
  hooks.transcript = hooks.userTurns.join(" ");
  hooks.agentText = hooks.agentTurns.map((t) => t.text).join(" ");
}

function setMeter(id, value) {
  const known = typeof value === "number";
  $(id).value = known ? value : 0;
  const out = $(`${id}-value`);
  if (out) out.textContent = known ? value.toFixed(2) : "–";
}

function showLatency(ms) {
  for (const [key, value] of Object.entries(ms)) {
    const cell = document.querySelector(`#latency td[data-key="${key}"]`);
    if (cell) cell.textContent = value == null ? "–" : `${Math.round(value)} ms`;
  }
}

// ------------------------------------------------------------------ protocol
function onEvent(ev) {
  if (ev.type !== "duplex.turn") {
    hooks.events.push({ t: Math.round(performance.now() - t0), type: ev.type,
                        response_id: ev.response_id ?? ev.response?.id,
                        reason: ev.reason ?? ev.response?.status_details?.reason,
                        audio_start_ms: ev.audio_start_ms });
    if (hooks.events.length > 1000) hooks.events.shift();
  }
  switch (ev.type) {
    case "session.created": {
      const s = ev.session;
      $("models").textContent = `${s.protocol} · session ${s.id} · ` +
        Object.entries(s.models || {}).map(([k, v]) => `${k}: ${v}`).join(" · ");
      setConnection("connected", "Connected");
      setState("listening");
      setOutputRate(s.output_sample_rate);
      const rate = audio?.sampleRate;
      // Ask for agent audio at the context's own rate: the server resamples
      // (soxr) better than the worklet's linear interpolation would.
      if (rate !== s.output_sample_rate && ACCEPTED_RATES.includes(rate)) {
        conn.send({ type: "session.update", session: { output_sample_rate: rate } });
      } else {
        setReady();
      }
      break;
    }
    case "session.updated":
      setOutputRate(ev.session.output_sample_rate);
      setReady();
      break;
    case "error": {
      const err = ev.error || {};
      if (err.code === "invalid_sample_rate" && !hooks.ready) { setReady(); break; }
      if (err.code === "unauthorized" || err.code === "server_full") break; // the close explains
      showError(`Server: ${err.message || err.code}`);
      break;
    }
    case "conversation.item.input_audio_transcription.delta": {
      const e = entry(ev.item_id, "user");
      e.li.classList.add("partial");
      e.text = ev.transcript ?? e.text + (ev.delta || "");
      hooks.partial = e.text;
      setText(e, e.text);
      break;
    }
    case "conversation.item.input_audio_transcription.completed": {
      const e = entry(ev.item_id, "user");
      e.li.classList.remove("partial");
      e.text = ev.transcript ?? "";
      hooks.partial = "";
      if (ev.transcript) hooks.userTurns.push(ev.transcript);
      setText(e, e.text || "…");
      updateTranscriptHooks();
      break;
    }
    case "conversation.item.input_audio_transcription.failed":
      note(entry(ev.item_id, "user"), "(not understood)");
      break;
    case "response.output_audio_transcript.delta": {
      const e = entry(ev.response_id, "agent");
      if (!e.turn) { e.turn = { id: ev.response_id, text: "" }; hooks.agentTurns.push(e.turn); }
      itemToResponse.set(ev.item_id, ev.response_id);
      e.text += ev.delta;
      e.turn.text = e.text.trim();
      setText(e, e.text);
      updateTranscriptHooks();
      break;
    }
    case "output_audio_buffer.started":
      audioRid = ev.response_id;
      break;
    case "response.output_audio.done":
      audio?.complete(); // play the tail without waiting for the jitter buffer
      break;
    case "output_audio_buffer.paused":
      audio?.pause();
      setState("paused");
      break;
    case "output_audio_buffer.resumed":
      audio?.resume();
      setState("speaking");
      break;
    case "response.interrupted":
      interrupted(ev);
      break;
    case "conversation.item.truncated": {
      const rid = itemToResponse.get(ev.item_id);
      const e = rid && entries.get(rid);
      if (e) {
        const heard = ev.transcript || "";
        const rest = e.text.trim().startsWith(heard) ? e.text.trim().slice(heard.length) : "";
        setText(e, heard, rest);
        note(e, "(interrupted)");
      }
      break;
    }
    case "response.done": {
      const r = ev.response || {};
      if (r.id === audioRid && r.status !== "completed") audioRid = null;
      const e = entries.get(r.id);
      if (e && r.status === "failed") note(e, "(failed)");
      break;
    }
    case "duplex.metrics":
      if (ev.kind === "turn") {
        hooks.latency.push(ev.latency_ms);
        showLatency(ev.latency_ms);
      } else if (ev.kind === "interruption") {
        hooks.stopLatency.push(ev.stop_latency_ms);
        showLatency({ stop: ev.stop_latency_ms });
      }
      break;
    case "duplex.turn":
      hooks.turn = ev;
      setMeter("p-user", ev.p_user);
      setMeter("p-shift", ev.p_shift);
      break;
    case "duplex.state":
      if (!(hooks.state === "paused" && ev.state === "speaking")) setState(ev.state);
      break;
    default:
      break; // unknown events are ignored, as the protocol asks
  }
}

async function interrupted(ev) {
  // Barge-in: drop every unplayed sample now, then say what was heard.
  const rid = ev.response_id;
  if (audioRid === rid) audioRid = null; // late audio of this response is dropped too
  if (!audio) return;
  const report = await audio.flush();
  const playedMs = ((report.played[rid] || 0) / report.rate) * 1000;
  const flush = { response_id: rid, played_ms: Math.round(playedMs),
                  dropped_ms: Math.round((report.dropped / report.rate) * 1000) };
  hooks.flushes.push(flush);
  const truncate = { type: "conversation.item.truncate", item_id: ev.item_id, content_index: 0,
                     audio_end_ms: flush.played_ms };
  hooks.truncates.push(truncate);
  conn?.send(truncate);
  if (hooks.state === "paused") setState("user_speaking");
}

function onAudio(buffer) {
  if (audioRid !== null && audio) audio.play(audioRid, buffer);
}

function onFrame(pcm, rms) {
  $("mic-level").value = Math.min(1, rms * 4);
  if (!hooks.ready || !conn?.open) return;
  // Muted: keep sending silence so the server's audio clock keeps running.
  conn.sendAudio(muted ? new ArrayBuffer(pcm.byteLength) : pcm);
  hooks.framesSent++;
}

function onPosition(m) {
  hooks.playedSamples = m.playedOut;
  hooks.bufferedMs = Math.round((m.buffered / m.rate) * 1000);
  for (const [rid, n] of Object.entries(m.played)) hooks.playedMs[rid] = (n / m.rate) * 1000;
  // Report the playback position of the response being played, while it advances.
  const rid = audioRid;
  if (!rid) return;
  const played = m.played[rid] || 0;
  const now = performance.now();
  if (lastReport.rid !== rid) lastReport = { rid, at: 0, played: 0 };
  if (played > lastReport.played && now - lastReport.at >= REPORT_MS) {
    lastReport = { rid, at: now, played };
    conn?.send({ type: "output_audio_buffer.playback", response_id: rid,
                 played_ms: Math.round((played / m.rate) * 10000) / 10 });
  }
}

function setOutputRate(rate) {
  hooks.outputRate = rate;
  audio?.setOutputRate(rate);
}

function setReady() {
  hooks.ready = true;
  for (const id of ["mute", "cancel", "text", "send"]) $(id).disabled = false;
}

// ------------------------------------------------------------------ controls
async function start() {
  clearError();
  $("start").disabled = true;
  setConnection("connecting", "Opening the microphone…");
  t0 = performance.now();
  entries.clear(); // ids restart with each session; the log above stays
  itemToResponse.clear();
  hooks.playedMs = {};
  audio = new AudioIO({ onFrame, onPosition });
  try {
    await audio.start();
  } catch (err) {
    showError(err.message);
    await stop();
    return;
  }
  hooks.sampleRate = audio.sampleRate;
  setConnection("connecting", "Connecting…");
  conn = new Connection(socketUrl(window.location), {
    onEvent, onAudio,
    onClose: ({ words }) => stop(words),
  });
  $("start").textContent = "End conversation";
  $("start").disabled = false;
}

async function stop(words = null) {
  const c = conn, a = audio;
  conn = audio = null;
  audioRid = null;
  hooks.ready = false;
  c?.close();
  await a?.stop();
  if (words) {
    showError(words);
    setConnection("closed", "Disconnected");
  } else {
    setConnection("idle", "Not connected");
  }
  setState("idle");
  for (const id of ["mute", "cancel", "text", "send"]) $(id).disabled = true;
  $("start").textContent = "Start conversation";
  $("start").disabled = false;
}

function cancelAgent() {
  if (conn?.open) conn.send({ type: "response.cancel" });
}

$("start").addEventListener("click", () => (conn || audio ? stop() : start()));
$("mute").addEventListener("click", () => {
  muted = !muted;
  $("mute").setAttribute("aria-pressed", String(muted));
  $("mute").textContent = muted ? "Unmute microphone" : "Mute microphone";
});
$("cancel").addEventListener("click", cancelAgent);
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape") cancelAgent();
});
$("typed").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("text").value.trim();
  if (!text || !conn?.open) return;
  conn.send({ type: "conversation.item.create",
              item: { type: "message", role: "user", content: [{ type: "input_text", text }] } });
  conn.send({ type: "response.create" });
  setText(entry(`typed_${performance.now()}`, "user"), text);
  $("text").value = "";
});
