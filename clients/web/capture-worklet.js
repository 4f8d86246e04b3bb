// Microphone capture: downmix to mono, resample from the context rate to
// 16 kHz with a windowed-sinc low-pass (no aliasing from 44.1/48 kHz), and
// post 20 ms PCM16 frames (320 samples, 640 bytes) to the main thread.
const TARGET_RATE = 16000;
const FRAME = 320;
const ZEROS = 8; // zero crossings of the sinc on each side
const TABLE_RES = 256; // kernel table entries per input sample

class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / TARGET_RATE; // input samples per output sample
    // Pass band to 7.2 kHz (or 0.45 of a lower input rate): cutoff as a
    // fraction of the input rate's Nyquist frequency.
    const fc = Math.min(0.9, (2 * 0.45 * TARGET_RATE) / sampleRate);
    this.half = ZEROS / fc;
    const n = Math.ceil(this.half * TABLE_RES) + 2;
    this.kernel = new Float32Array(n);
    for (let k = 0; k < n; k++) {
      const x = k / TABLE_RES;
      if (x > this.half) break;
      const u = fc * x;
      const sinc = u === 0 ? 1 : Math.sin(Math.PI * u) / (Math.PI * u);
      const win = 0.5 + 0.5 * Math.cos((Math.PI * x) / this.half); // Hann
      this.kernel[k] = fc * sinc * win;
    }
    const pad = Math.ceil(this.half) + 1;
    this.buf = new Float32Array(8192);
    this.len = pad; // starts with `pad` zeros of history
    this.pos = pad; // input position of the next output sample
    this.frame = new Int16Array(FRAME);
    this.fill = 0;
    this.sumSq = 0;
  }

  tap(d) {
    const t = Math.abs(d) * TABLE_RES;
    const i = Math.floor(t);
    if (i + 1 >= this.kernel.length) return 0;
    const f = t - i;
    return this.kernel[i] * (1 - f) + this.kernel[i + 1] * f;
  }

  append(channels) {
    const n = channels[0].length;
    if (this.len + n > this.buf.length) {
      // Drop history no output sample needs any more.
      const keep = Math.floor(this.pos - this.half) - 1;
      if (keep > 0) {
        this.buf.copyWithin(0, keep, this.len);
        this.len -= keep;
        this.pos -= keep;
      }
      if (this.len + n > this.buf.length) {
        const bigger = new Float32Array(2 * (this.len + n));
        bigger.set(this.buf.subarray(0, this.len));
        this.buf = bigger;
      }
    }
    for (let i = 0; i < n; i++) {
      let v = 0;
      for (const ch of channels) v += ch[i];
      this.buf[this.len + i] = v / channels.length;
    }
    this.len += n;
  }

  process(inputs) {
    const channels = inputs[0];
    if (!channels || channels.length === 0) return true;
    this.append(channels);
    while (this.pos + this.half < this.len - 1) {
      const lo = Math.ceil(this.pos - this.half);
      const hi = Math.floor(this.pos + this.half);
      let acc = 0;
      for (let i = lo; i <= hi; i++) acc += this.buf[i] * this.tap(i - this.pos);
      this.pos += this.step;
      this.sumSq += acc * acc;
      const s = Math.max(-1, Math.min(1, acc));
      this.frame[this.fill++] = s < 0 ? Math.round(s * 32768) : Math.round(s * 32767);
      if (this.fill === FRAME) {
        const rms = Math.sqrt(this.sumSq / FRAME);
        this.port.postMessage({ pcm: this.frame.buffer, rms }, [this.frame.buffer]);
        this.frame = new Int16Array(FRAME);
        this.fill = 0;
        this.sumSq = 0;
      }
    }
    return true;
  }
}

registerProcessor("duplex-capture", CaptureProcessor);
