// Agent audio playback with a small jitter buffer.
//
// Chunks of agent audio (Float32, at the session's output rate) arrive from the
// main thread tagged with their response id. Playback of a burst starts once
// `jitterMs` of audio is buffered (or the response's audio is complete) and
// restarts the same way after an underrun. `flush` drops everything unplayed at
// once (barge-in) and answers with how much of each response was played, so
// the page can send conversation.item.truncate. `pause` holds the buffer and
// `resume` carries on. When the output rate differs from the context rate the
// audio is resampled by linear interpolation (the page normally asks the server
// for the context's own rate, so this is the exception).
const REPORT_S = 0.05;

class PlaybackProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = options.processorOptions || {};
    this.setRate(opts.sourceRate || sampleRate);
    this.jitterMs = opts.jitterMs ?? 60;
    this.queue = []; // {rid, data: Float32Array, off}
    this.buffered = 0; // source samples queued
    this.playing = false;
    this.paused = false;
    this.complete = false; // the current response's audio has all arrived
    this.played = {}; // rid -> source samples played
    this.playedOut = 0; // output samples that carried agent audio
    this.prev = 0;
    this.cur = 0;
    this.phase = 1; // >= 1: fetch a new source sample
    this.sinceReport = 0;
    this.port.onmessage = (e) => this.onMessage(e.data);
  }

  setRate(rate) {
    this.sourceRate = rate;
    this.step = rate / sampleRate; // source samples per output sample
  }

  onMessage(m) {
    switch (m.type) {
      case "audio":
        this.queue.push({ rid: m.rid, data: m.samples, off: 0 });
        this.buffered += m.samples.length;
        this.complete = false;
        break;
      case "complete":
        this.complete = true;
        break;
      case "flush": {
        const dropped = this.buffered;
        this.queue = [];
        this.buffered = 0;
        this.playing = false;
        this.paused = false;
        this.prev = this.cur = 0;
        this.phase = 1;
        this.port.postMessage({ type: "flushed", id: m.id, dropped, played: { ...this.played },
                                playedOut: this.playedOut, rate: this.sourceRate });
        break;
      }
      case "pause":
        this.paused = true;
        break;
      case "resume":
        this.paused = false;
        break;
      case "rate":
        this.setRate(m.rate);
        break;
    }
  }

  next() {
    // One source sample from the queue (null when it is empty).
    while (this.queue.length && this.queue[0].off >= this.queue[0].data.length) this.queue.shift();
    if (!this.queue.length) return null;
    const head = this.queue[0];
    this.played[head.rid] = (this.played[head.rid] || 0) + 1;
    this.buffered--;
    return head.data[head.off++];
  }

  process(_inputs, outputs) {
    const out = outputs[0];
    const n = out[0].length;
    const need = (this.jitterMs * this.sourceRate) / 1000;
    if (!this.playing && !this.paused && this.buffered > 0 &&
        (this.buffered >= need || this.complete)) {
      this.playing = true;
    }
    const y = out[0];
    if (this.playing && !this.paused) {
      for (let i = 0; i < n; i++) {
        while (this.phase >= 1) {
          const s = this.next();
          if (s === null) break;
          this.prev = this.cur;
          this.cur = s;
          this.phase -= 1;
        }
        if (this.phase >= 1) { // underrun: wait for the buffer to refill
          this.playing = false;
          y.fill(0, i);
          break;
        }
        y[i] = this.prev + (this.cur - this.prev) * this.phase;
        this.phase += this.step;
        this.playedOut++;
      }
    } else {
      y.fill(0);
    }
    for (let c = 1; c < out.length; c++) out[c].set(y);
    this.sinceReport += n;
    if (this.sinceReport >= REPORT_S * sampleRate) {
      this.sinceReport = 0;
      this.port.postMessage({ type: "position", played: { ...this.played }, playedOut: this.playedOut,
                              buffered: this.buffered, playing: this.playing && !this.paused,
                              rate: this.sourceRate });
    }
    return true;
  }
}

registerProcessor("duplex-playback", PlaybackProcessor);
