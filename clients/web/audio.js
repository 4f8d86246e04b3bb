// The page's audio: microphone capture and agent playback, both in AudioWorklets.

export const ACCEPTED_RATES = [8000, 16000, 22050, 24000, 32000, 44100, 48000];

export class MicrophoneError extends Error {}

// getUserMedia failures in plain words.
function micError(err) {
  const name = err && err.name;
  if (name === "NotAllowedError" || name === "SecurityError") {
    return new MicrophoneError("Microphone access was refused. Allow the microphone for this " +
      "page (the icon in the address bar) and press Start again.");
  }
  if (name === "NotFoundError" || name === "OverconstrainedError") {
    return new MicrophoneError("No microphone was found. Plug one in and press Start again.");
  }
  if (name === "NotReadableError" || name === "AbortError") {
    return new MicrophoneError("The microphone is in use by another program or could not " +
      "be opened.");
  }
  return new MicrophoneError(`The microphone could not be opened (${name || err}).`);
}

export class AudioIO {
  // onFrame(ArrayBuffer: 20 ms of PCM16 at 16 kHz, rms level); onPosition(playback report)
  constructor({ onFrame, onPosition }) {
    this.onFrame = onFrame;
    this.onPosition = onPosition;
    this.ctx = null;
    this.stream = null;
    this.flushes = new Map();
    this.nextFlush = 1;
  }

  get sampleRate() {
    return this.ctx ? this.ctx.sampleRate : 0;
  }

  // Must be called from a user gesture (click / key) so the context may start.
  async start() {
    if (!window.isSecureContext || !navigator.mediaDevices?.getUserMedia) {
      throw new MicrophoneError("This browser only allows the microphone on https:// pages or " +
        "on localhost. Open the page through https or on this machine.");
    }
    const AC = window.AudioContext || window.webkitAudioContext;
    if (!AC || !("audioWorklet" in AC.prototype)) {
      throw new MicrophoneError("This browser lacks AudioWorklet support; use a current " +
        "Chromium or Firefox.");
    }
    this.ctx = new AC({ latencyHint: "interactive" });
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true,
                 channelCount: 1 },
        video: false,
      });
    } catch (err) {
      await this.stop();
      throw micError(err);
    }
    await this.ctx.audioWorklet.addModule(new URL("capture-worklet.js", import.meta.url));
    await this.ctx.audioWorklet.addModule(new URL("playback-worklet.js", import.meta.url));
    this.source = this.ctx.createMediaStreamSource(this.stream);
    this.capture = new AudioWorkletNode(this.ctx, "duplex-capture",
      { numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [1] });
    this.capture.port.onmessage = (e) => this.onFrame(e.data.pcm, e.data.rms);
    this.source.connect(this.capture);
    this.capture.connect(this.ctx.destination); // writes silence; keeps the node pulled
    this.player = new AudioWorkletNode(this.ctx, "duplex-playback", {
      numberOfInputs: 0, numberOfOutputs: 1, outputChannelCount: [1],
      processorOptions: { sourceRate: this.ctx.sampleRate, jitterMs: 60 },
    });
    this.player.port.onmessage = (e) => this.onPlayerMessage(e.data);
    this.player.connect(this.ctx.destination);
    if (this.ctx.state !== "running") await this.ctx.resume();
  }

  onPlayerMessage(m) {
    if (m.type === "position") this.onPosition(m);
    else if (m.type === "flushed") {
      const resolve = this.flushes.get(m.id);
      this.flushes.delete(m.id);
      if (resolve) resolve(m);
    }
  }

  setOutputRate(rate) {
    this.player?.port.postMessage({ type: "rate", rate });
  }

  play(rid, pcm16) {
    const ints = new Int16Array(pcm16);
    const samples = new Float32Array(ints.length);
    for (let i = 0; i < ints.length; i++) samples[i] = ints[i] / 32768;
    this.player.port.postMessage({ type: "audio", rid, samples }, [samples.buffer]);
  }

  complete() {
    this.player?.port.postMessage({ type: "complete" });
  }

  pause() {
    this.player?.port.postMessage({ type: "pause" });
  }

  resume() {
    this.player?.port.postMessage({ type: "resume" });
  }

  // Drop all unplayed audio now; resolves with {played: {rid: samples}, dropped, rate}.
  flush() {
    if (!this.player) return Promise.resolve({ played: {}, dropped: 0, rate: 1 });
    const id = this.nextFlush++;
    return new Promise((resolve) => {
      this.flushes.set(id, resolve);
      this.player.port.postMessage({ type: "flush", id });
    });
  }

  async stop() {
    this.stream?.getTracks().forEach((t) => t.stop());
    this.stream = null;
    try { this.source?.disconnect(); this.capture?.disconnect(); this.player?.disconnect(); }
    catch (_) { /* already gone */ }
    this.source = this.capture = this.player = null;
    if (this.ctx && this.ctx.state !== "closed") await this.ctx.close();
    this.ctx = null;
  }
}
