// earshot player: the AudioWorklet processor that plays a live call.
//
// The main thread posts decoded stereo PCM ({type:"pcm", l, r, rate, ts}); this processor keeps
// it in a growable ring buffer of stereo frames and plays it with
//   - an adaptive jitter buffer: playback starts (and restarts after an underrun) once `target`
//     seconds are buffered; the target starts at 60 ms, grows by 20 ms on each underrun (up to
//     300 ms), and on a steady link (no underrun, a margin left) it tightens towards 40 ms. When
//     the buffer has been steadily deeper than the target for a few seconds, a live stream is
//     consumed 0.5 % faster than real time until the depth is back on target (an inaudible
//     pitch change instead of a dropped-sample click). The sensor smooths the network's jitter
//     before it sends (its own adaptive buffer), so this one only absorbs the path from the
//     sensor to the page: frames come every 20 ms, hence a floor of two frames;
//   - fades: every stop (underrun, end, stop) fades out over the last render quantum and every
//     start fades in over 5 ms, so an underrun never clicks;
//   - linear resampling from the stream rate to the AudioContext rate (none at 48 kHz/48 kHz).
// Every ~100 ms it reports to the main thread: samples played, buffer depth, target, underruns,
// the capture time of the sample being played, and its state.

const FADE_IN_SECONDS = 0.005;
const TARGET_START = 0.06;
const TARGET_MIN = 0.04;
const TARGET_MAX = 0.3;
const TARGET_STEP = 0.02;
const STEADY_SECONDS = 3;
const SPEEDUP = 1.005;
const REPORT_SECONDS = 0.1;
// A live stream this far behind its target (a stalled tab or network, then a burst) is not
// worth catching up at 0.5 %: fade out, jump to the target, fade in.
const CATCH_UP_SECONDS = 0.5;

class Ring {
  constructor(frames) {
    this.cap = frames;
    this.l = new Float32Array(frames);
    this.r = new Float32Array(frames);
    this.read = 0; // absolute frame index of the next frame to read
    this.write = 0; // absolute frame index of the next frame to write
  }
  get size() {
    return this.write - this.read;
  }
  grow(min) {
    let cap = this.cap;
    while (cap < min) cap *= 2;
    const l = new Float32Array(cap);
    const r = new Float32Array(cap);
    for (let i = this.read; i < this.write; i++) {
      l[i % cap] = this.l[i % this.cap];
      r[i % cap] = this.r[i % this.cap];
    }
    this.l = l;
    this.r = r;
    this.cap = cap;
  }
  push(l, r) {
    if (this.size + l.length > this.cap) this.grow(this.size + l.length);
    for (let i = 0; i < l.length; i++) {
      const k = (this.write + i) % this.cap;
      this.l[k] = l[i];
      this.r[k] = r[i];
    }
    this.write += l.length;
  }
  // Frame at absolute index i (must be within [read, write)).
  atL(i) {
    return this.l[i % this.cap];
  }
  atR(i) {
    return this.r[i % this.cap];
  }
}

class EarshotPlayerProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.ring = new Ring(1 << 16);
    this.inRate = sampleRate;
    this.pos = 0; // fractional absolute read position (frames)
    this.state = "buffering"; // buffering | playing | drained | stopped
    this.target = TARGET_START;
    this.live = true;
    this.ended = false; // the stream ended: play out what is left, then stop
    this.fadeIn = 0; // frames of fade-in left
    this.fadeInLen = Math.max(1, Math.round(FADE_IN_SECONDS * sampleRate));
    this.gain = 0;
    this.samplesPlayed = 0; // output frames of real audio played
    this.underruns = 0;
    this.skips = 0; // catch-up jumps
    this.steadySince = -1;
    this.minDepth = Infinity;
    this.speedup = false;
    // capture-time segments: [{start: absolute frame index, ts: capture ms of that frame}]
    this.segments = [];
    this.sinceReport = 0;
    this.port.onmessage = (ev) => this.onMessage(ev.data);
  }

  onMessage(m) {
    if (m.type === "pcm") {
      if (m.rate && m.rate !== this.inRate) {
        // A new rate only happens on a fresh stream; drop what was queued at the old rate.
        this.inRate = m.rate;
        this.ring.read = this.ring.write;
        this.pos = this.ring.write;
        this.segments = [];
      }
      this.segments.push({ start: this.ring.write, ts: m.ts });
      this.ring.push(m.l, m.r);
      if (this.state === "drained" || this.state === "stopped") this.state = "buffering";
      this.ended = false;
    } else if (m.type === "config") {
      if (typeof m.live === "boolean") this.live = m.live;
    } else if (m.type === "end") {
      this.ended = true;
    } else if (m.type === "reset") {
      this.ring.read = this.ring.write;
      this.pos = this.ring.write;
      this.segments = [];
      this.state = "buffering";
      this.ended = false;
      this.target = TARGET_START;
      this.gain = 0;
    }
  }

  depthSeconds() {
    return Math.max(0, this.ring.write - this.pos) / this.inRate;
  }

  captureTsAt(pos) {
    let seg = null;
    for (let i = this.segments.length - 1; i >= 0; i--) {
      if (this.segments[i].start <= pos) {
        seg = this.segments[i];
        break;
      }
    }
    if (!seg || typeof seg.ts !== "number") return null;
    return seg.ts + ((pos - seg.start) / this.inRate) * 1000;
  }

  process(inputs, outputs) {
    const out = outputs[0];
    const outL = out[0];
    const outR = out[1] || out[0];
    const n = outL.length;
    const baseStep = this.inRate / sampleRate;

    if (this.state === "buffering") {
      const depth = this.depthSeconds();
      if (depth >= this.target || (this.ended && depth > 0)) {
        this.state = "playing";
        this.fadeIn = this.fadeInLen;
        this.steadySince = currentTime;
        this.minDepth = Infinity;
      }
    }

    if (this.state !== "playing") {
      outL.fill(0);
      if (outR !== outL) outR.fill(0);
      this.report(n);
      return true;
    }

    // Adaptive shrink: a live stream steadily deeper than target + 10 ms plays 0.5 % faster.
    const depth = this.depthSeconds();
    this.minDepth = Math.min(this.minDepth, depth);
    if (currentTime - this.steadySince >= STEADY_SECONDS) {
      this.speedup = this.live && this.minDepth > this.target + 0.01;
      if (!this.speedup && this.live && this.target > TARGET_MIN && this.minDepth > 0.02) {
        // No underrun for a while and a comfortable margin: tighten the target a little.
        this.target = Math.max(TARGET_MIN, this.target - 0.005);
      }
      this.steadySince = currentTime;
      this.minDepth = Infinity;
    }
    if (this.speedup && depth <= this.target) this.speedup = false;
    const catchUp = this.live && depth > this.target + CATCH_UP_SECONDS;
    const step = this.speedup ? baseStep * SPEEDUP : baseStep;

    // Frames available for this quantum (linear interpolation needs pos+1).
    const need = (n - 1) * step + 2;
    const avail = this.ring.write - this.pos;
    let fadeOut = false;
    let produce = n;
    if (avail < need) {
      // Underrun (or the end of the stream): play what is left with a fade to zero.
      fadeOut = true;
      produce = Math.max(0, Math.min(n, Math.floor((avail - 1) / step)));
    }

    const ring = this.ring;
    for (let i = 0; i < n; i++) {
      if (i >= produce) {
        outL[i] = 0;
        if (outR !== outL) outR[i] = 0;
        continue;
      }
      const p = this.pos;
      const i0 = Math.floor(p);
      const frac = p - i0;
      let l = ring.atL(i0);
      let r = ring.atR(i0);
      if (frac > 0) {
        l += (ring.atL(i0 + 1) - l) * frac;
        r += (ring.atR(i0 + 1) - r) * frac;
      }
      let g = 1;
      if (this.fadeIn > 0) {
        g = 1 - this.fadeIn / this.fadeInLen;
        this.fadeIn--;
      }
      if (fadeOut) g *= 1 - (i + 1) / produce;
      else if (catchUp) g *= 1 - (i + 1) / n;
      outL[i] = l * g;
      if (outR !== outL) outR[i] = r * g;
      this.pos += step;
    }
    this.samplesPlayed += produce;
    ring.read = Math.min(ring.write, Math.floor(this.pos));
    if (catchUp && !fadeOut) {
      this.pos = Math.max(this.pos, ring.write - this.target * this.inRate);
      ring.read = Math.floor(this.pos);
      this.fadeIn = this.fadeInLen;
      this.skips++;
    }

    if (fadeOut) {
      if (this.ended) {
        this.state = "drained";
        this.pos = ring.write;
        ring.read = ring.write;
      } else {
        this.state = "buffering";
        this.underruns++;
        this.target = Math.min(TARGET_MAX, this.target + TARGET_STEP);
      }
      this.speedup = false;
    }
    this.report(n);
    return true;
  }

  report(n) {
    this.sinceReport += n;
    if (this.sinceReport < REPORT_SECONDS * sampleRate) return;
    this.sinceReport = 0;
    // Forget capture-time segments that are entirely played.
    let k = 0;
    while (k + 1 < this.segments.length && this.segments[k + 1].start <= this.pos) k++;
    if (k > 0) this.segments.splice(0, k);
    const ts = this.state === "playing" ? this.captureTsAt(this.pos) : null;
    this.port.postMessage({
      type: "stats",
      samplesPlayed: this.samplesPlayed,
      sampleRate,
      depth: this.depthSeconds(),
      target: this.target,
      underruns: this.underruns,
      skips: this.skips,
      state: this.state,
      // How far behind real time the sample being played was captured (ms), measured here so
      // the message's own delay does not count.
      behindMs: ts === null ? null : Date.now() - ts,
      speedup: this.speedup,
    });
  }
}

registerProcessor("earshot-player", EarshotPlayerProcessor);
