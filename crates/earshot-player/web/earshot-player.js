// earshot player: live listening in the browser.
//
// Exports
//   parseFrame(arrayBuffer)   one `stream` frame (as /api/listen sends it) → an object
//   ListenSession             one listening session: WebSocket, AudioWorklet playback, mute/solo,
//                             volume, level meters, latency, quality, reconnection, WAV recording
//   EarshotPlayerElement      <earshot-player sensor="1" callref="…" start="now">, or on another
//                             site <earshot-player token="…" src-origin="https://player…">
//   fmtDuration, wavBlob      small helpers the page shares
//
// The page (/app.js) and the web component use the same code; see docs/player.md.

export const KIND_AUDIO = 1;
export const KIND_EVENT = 2;
export const KIND_QUALITY = 3;
export const KIND_END = 4;
export const KIND_OPUS = 5;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const decoder = new TextDecoder();

/** Decodes one binary WebSocket message: `[kind u8][len u32 BE][payload]`. */
export function parseFrame(buf) {
  if (buf.byteLength < 5) throw new Error("frame shorter than its 5-byte head");
  const dv = new DataView(buf);
  const kind = dv.getUint8(0);
  const len = dv.getUint32(1);
  if (len !== buf.byteLength - 5) throw new Error(`frame length ${len} does not match the message (${buf.byteLength - 5})`);
  if (kind === KIND_AUDIO) {
    if (len < 17) throw new Error("audio frame shorter than 17 bytes");
    const seq = dv.getUint32(5);
    const tsNs = dv.getBigInt64(9);
    const rate = dv.getUint32(17);
    const channels = dv.getUint8(21);
    const bytes = len - 17;
    if (channels < 1 || channels > 2 || bytes % (2 * channels) !== 0) throw new Error("audio frame with a bad sample count");
    const count = bytes / 2;
    let samples;
    if (LITTLE_ENDIAN) {
      samples = new Int16Array(buf, 22, count); // offset 22 is even: aligned
    } else {
      samples = new Int16Array(count);
      for (let i = 0; i < count; i++) samples[i] = dv.getInt16(22 + 2 * i, true);
    }
    return { kind, seq, captureMs: Number(tsNs / 1000n) / 1000, rate, channels, samples };
  }
  if (kind === KIND_OPUS) {
    if (len < 18) throw new Error("Opus frame shorter than 18 bytes");
    const channels = dv.getUint8(21);
    if (channels < 1 || channels > 2) throw new Error("Opus frame with a bad channel count");
    const tsNs = dv.getBigInt64(9);
    return { kind, seq: dv.getUint32(5), captureMs: Number(tsNs / 1000n) / 1000, rate: dv.getUint32(17), channels, packet: new Uint8Array(buf, 22) };
  }
  if (kind === KIND_EVENT || kind === KIND_QUALITY || kind === KIND_END) {
    const json = JSON.parse(decoder.decode(new Uint8Array(buf, 5, len)));
    return { kind, json };
  }
  return { kind, unknown: true };
}

export function fmtDuration(seconds) {
  if (seconds == null || !Number.isFinite(Number(seconds))) return "–";
  const s = Math.max(0, Math.floor(Number(seconds)));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/** A 16-bit PCM WAV from Int16Array chunks of interleaved samples. */
export function wavBlob(chunks, rate, channels) {
  let samples = 0;
  for (const c of chunks) samples += c.length;
  const dataBytes = samples * 2;
  const head = new ArrayBuffer(44);
  const dv = new DataView(head);
  const text = (o, s) => { for (let i = 0; i < s.length; i++) dv.setUint8(o + i, s.charCodeAt(i)); };
  text(0, "RIFF");
  dv.setUint32(4, 36 + dataBytes, true);
  text(8, "WAVE");
  text(12, "fmt ");
  dv.setUint32(16, 16, true);
  dv.setUint16(20, 1, true);
  dv.setUint16(22, channels, true);
  dv.setUint32(24, rate, true);
  dv.setUint32(28, rate * channels * 2, true);
  dv.setUint16(32, channels * 2, true);
  dv.setUint16(34, 16, true);
  text(36, "data");
  dv.setUint32(40, dataBytes, true);
  const parts = [head];
  for (const c of chunks) {
    if (LITTLE_ENDIAN) parts.push(c);
    else {
      const b = new DataView(new ArrayBuffer(c.length * 2));
      c.forEach((v, i) => b.setInt16(2 * i, v, true));
      parts.push(b);
    }
  }
  return new Blob(parts, { type: "audio/wav" });
}

// ---- audio context, shared by every session on the page ----

let sharedCtx = null;
let workletReady = null;

function workletUrl() {
  return new URL("player-worklet.js", import.meta.url).href;
}

/** The page's AudioContext. Call it from a click handler the first time (autoplay rules). */
export function audioContext() {
  if (!sharedCtx) {
    try {
      sharedCtx = new AudioContext({ sampleRate: 48000, latencyHint: "interactive" });
    } catch {
      sharedCtx = new AudioContext({ latencyHint: "interactive" });
    }
    workletReady = sharedCtx.audioWorklet.addModule(workletUrl());
  }
  if (sharedCtx.state === "suspended") sharedCtx.resume().catch(() => {});
  return sharedCtx;
}

/**
 * Whether this browser can decode the Opus stream the sensor sends (WebCodecs `AudioDecoder`,
 * Chromium 94+, Safari 16.4+ for audio, Firefox 130+). Where it cannot, sessions take PCM.
 */
export async function opusSupported(channels = 2) {
  if (typeof AudioDecoder === "undefined" || typeof EncodedAudioChunk === "undefined") return false;
  try {
    const r = await AudioDecoder.isConfigSupported({ codec: "opus", sampleRate: 48000, numberOfChannels: channels });
    return !!r.supported;
  } catch {
    return false;
  }
}

// Errors after which reconnecting cannot help.
const FATAL = /listen token|call not found|not registered|not a call reference|callref is missing|does not allow|log in|session has expired|origin|must be|needs a WebSocket|no sensor_id given/i;
const RETRY_DELAYS_MS = [500, 1000, 2000, 4000, 8000];

/**
 * One listening session. Events (all `CustomEvent`s, detail as shown):
 *   state    {state}            connecting | buffering | playing | reconnecting | ended | stopped | error
 *   header   {header}           the stream header (callreference, callid, caller, called, rate, channels, from)
 *   quality  {leg, report}      kind-3 frame: one party's per-second quality
 *   event    {event}            kind-2 frame: answered, hold, resume, codec_change, ended, …
 *   listening {status}          kind-2 status event: {state: waiting_for_media|playing|on_hold|undecodable|encrypted, codec, party}
 *   stats    {…}                ~10×/s: samplesPlayed, secondsPlayed, depthMs, targetMs, latencyMs, underruns, catchUps (jumps ahead after falling ≥ 0.5 s behind), droppedFrames,
 *                               bytesReceived (stream frames so far), codec ("opus" or "pcm")
 *   message  {text, level}      something to tell the user (errors, reconnection, call ended)
 */
export class ListenSession extends EventTarget {
  /**
   * @param {object} o
   * @param {string} o.callref      call reference (hex, as the call list shows it)
   * @param {string|number} [o.sensorId]  sensor id; omitted: the player's default sensor
   * @param {string} [o.from]       "now" | "start" | "-N" (N seconds ago)
   * @param {number} [o.rate]       stream rate asked for: 8000 | 16000 | 48000 (default 16000 in
   *                                Opus, the band telephone audio has; 48000 in PCM)
   * @param {string} [o.codec]      "auto" (Opus where the browser has WebCodecs, else PCM), "opus"
   *                                or "pcm"; Opus takes about 5 KB/s at 16 kHz stereo, PCM 64 KB/s
   * @param {string} [o.token]      a listen token (POST /api/v1/listen-tokens, minted by the
   *                                page's backend): listens with it instead of a login; it names
   *                                the call, so callref and sensorId may be left out
   * @param {string} [o.base]       URL of the player (default: this page's origin; with a token,
   *                                the origin this module was loaded from)
   * @param {number} [o.maxRecordSeconds]  how much received audio is kept for the WAV (default 1800)
   */
  constructor({ callref, sensorId, from = "now", rate, codec = "auto", base, token, maxRecordSeconds = 1800 }) {
    super();
    this.token = token ? String(token).trim() : null;
    this.callref = String(callref || "").trim();
    this.sensorId = sensorId === undefined || sensorId === null || sensorId === "" ? null : String(sensorId).trim();
    this.from = normalizeFrom(from);
    this.rateAsked = rate ? Number(rate) : null;
    this.rate = this.rateAsked || 48000;
    this.codec = codec === "opus" || codec === "pcm" ? codec : "auto";
    // Set by start(): whether this session asks for Opus.
    this.opus = false;
    this.opusDecoder = null;
    // Bytes of stream frames received (what the link carries, less WebSocket framing).
    this.bytesReceived = 0;
    // A page on another site loads this module from the player: with a token, that is where
    // the player is unless told otherwise.
    this.base = base ? new URL(base, location.href) : new URL(this.token ? new URL(import.meta.url).origin : location.href);
    this.maxRecordSeconds = maxRecordSeconds;
    this.state = "idle";
    this.header = null;
    this.quality = { caller: null, called: null };
    this.mute = { caller: false, called: false };
    this.solo = { caller: false, called: false };
    this.volume = 1;
    this.samplesPlayed = 0;
    this.sampleRate = 0;
    this.stats = {};
    this.droppedFrames = 0;
    this.record = { chunks: [], rate: 0, channels: 0, samples: 0, truncated: false };
    this.ws = null;
    this.stopped = false;
    this.ended = false;
    this.attempt = 0;
    this.retryTimer = null;
    this.lastSeq = null;
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state } }));
  }

  message(text, level = "info") {
    this.lastMessage = { text, level };
    this.dispatchEvent(new CustomEvent("message", { detail: { text, level } }));
  }

  /** Starts playback. Call it from a user gesture (click, Enter) so audio may start. */
  async start() {
    if (!this.callref && !this.token) throw new Error("no call reference");
    this.stopped = false;
    this.ended = false;
    const ctx = audioContext(); // synchronously, inside the gesture
    this.ctx = ctx;
    this.setState("connecting");
    try {
      await workletReady;
    } catch (e) {
      this.fail(`cannot load the audio worklet: ${e.message}`);
      return;
    }
    if (this.stopped) return;
    this.opus = this.codec !== "pcm" && (await opusSupported(2));
    if (this.codec === "opus" && !this.opus) this.message("this browser cannot decode Opus (no WebCodecs): listening in PCM", "warn");
    this.rate = this.rateAsked || (this.opus ? 16000 : 48000);
    if (this.stopped) return;
    this.buildGraph();
    this.connect(this.from);
  }

  buildGraph() {
    const ctx = this.ctx;
    this.node = new AudioWorkletNode(ctx, "earshot-player", {
      numberOfInputs: 0,
      numberOfOutputs: 1,
      outputChannelCount: [2],
    });
    this.node.port.onmessage = (ev) => this.onWorklet(ev.data);
    this.node.port.postMessage({ type: "config", live: this.from === "now" });
    const split = ctx.createChannelSplitter(2);
    const merge = ctx.createChannelMerger(2);
    this.node.connect(split);
    // Level meters see each party before mute/solo; the test analysers after.
    this.meterL = ctx.createAnalyser();
    this.meterR = ctx.createAnalyser();
    this.meterL.fftSize = this.meterR.fftSize = 2048;
    this.gainL = ctx.createGain();
    this.gainR = ctx.createGain();
    this.analyserL = ctx.createAnalyser();
    this.analyserR = ctx.createAnalyser();
    this.analyserL.fftSize = this.analyserR.fftSize = 32768; // 1.46 Hz bins at 48 kHz
    split.connect(this.meterL, 0);
    split.connect(this.meterR, 1);
    split.connect(this.gainL, 0);
    split.connect(this.gainR, 1);
    this.gainL.connect(this.analyserL).connect(merge, 0, 0);
    this.gainR.connect(this.analyserR).connect(merge, 0, 1);
    this.master = ctx.createGain();
    merge.connect(this.master).connect(ctx.destination);
    this.nodes = [this.node, split, merge, this.meterL, this.meterR, this.gainL, this.gainR, this.analyserL, this.analyserR, this.master];
    this.applyGains(true);
  }

  applyGains(immediate = false) {
    if (!this.gainL) return;
    const anySolo = this.solo.caller || this.solo.called;
    const on = (p) => (anySolo ? this.solo[p] : !this.mute[p]);
    const t = this.ctx.currentTime;
    for (const [g, v] of [[this.gainL, on("caller") ? 1 : 0], [this.gainR, on("called") ? 1 : 0], [this.master, this.volume]]) {
      g.gain.cancelScheduledValues(t);
      if (immediate) g.gain.setValueAtTime(v, t);
      else {
        // 20 ms ramps: no click when muting or moving the volume.
        g.gain.setValueAtTime(g.gain.value, t);
        g.gain.linearRampToValueAtTime(v, t + 0.02);
      }
    }
  }

  setMute(party, on) {
    this.mute[party] = !!on;
    this.applyGains();
  }
  setSolo(party, on) {
    this.solo[party] = !!on;
    this.applyGains();
  }
  setVolume(v) {
    this.volume = Math.max(0, Math.min(2, Number(v)));
    this.applyGains();
  }

  /** Level of each party in dBFS (before mute/solo), for meters. */
  levels() {
    const rms = (a) => {
      if (!a) return -Infinity;
      const buf = (this._lvl ||= new Float32Array(a.fftSize));
      a.getFloatTimeDomainData(buf);
      let sum = 0;
      for (let i = 0; i < buf.length; i++) sum += buf[i] * buf[i];
      return 10 * Math.log10(sum / buf.length || 1e-12);
    };
    return { caller: rms(this.meterL), called: rms(this.meterR) };
  }

  listenUrl(from) {
    // A token fixes the call and its start; a callref given too must be the token's.
    const q = this.token
      ? new URLSearchParams({ token: this.token, rate: String(this.rate), channels: "2" })
      : new URLSearchParams({ callref: this.callref, rate: String(this.rate), channels: "2", from });
    if (this.token && this.callref) q.set("callref", this.callref);
    if (this.opus) q.set("format", "opus");
    if (this.sensorId !== null) q.set("sensor_id", this.sensorId);
    const u = new URL("/api/listen?" + q, this.base);
    u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    return u.href;
  }

  connect(from) {
    clearTimeout(this.retryTimer);
    this.lastSeq = null;
    this.gotHeader = false;
    this.fatal = null;
    const ws = new WebSocket(this.listenUrl(from));
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onmessage = (ev) => {
      if (ws !== this.ws) return;
      if (typeof ev.data === "string") this.onText(ev.data);
      else {
        this.bytesReceived += ev.data.byteLength;
        this.onBinary(ev.data);
      }
    };
    ws.onclose = () => {
      if (ws !== this.ws) return;
      this.ws = null;
      this.onClose();
    };
  }

  onText(text) {
    let m;
    try {
      m = JSON.parse(text);
    } catch {
      return;
    }
    if (m.type === "header") {
      this.gotHeader = true;
      this.header = m;
      this.dispatchEvent(new CustomEvent("header", { detail: { header: m } }));
      if (this.state === "reconnecting") this.message("reconnected", "info");
      this.setState("buffering");
    } else if (m.type === "error") {
      const err = String(m.error || "unknown error");
      // The server says whether retrying can help; older servers do not, so fall back to the text.
      if (m.retry === false || (m.retry === undefined && FATAL.test(err))) this.fatal = err;
      else this.transientError = err;
      this.message(err, "error");
    }
  }

  onBinary(buf) {
    let f;
    try {
      f = parseFrame(buf);
    } catch (e) {
      this.message(`bad frame from the server: ${e.message}`, "error");
      return;
    }
    if (f.kind === KIND_AUDIO) this.onAudio(f);
    else if (f.kind === KIND_OPUS) this.onOpus(f);
    else if (f.kind === KIND_QUALITY) {
      const leg = f.json.leg === "called" ? "called" : "caller";
      this.quality[leg] = f.json;
      this.dispatchEvent(new CustomEvent("quality", { detail: { leg, report: f.json } }));
    } else if (f.kind === KIND_EVENT) {
      this.dispatchEvent(new CustomEvent("event", { detail: { event: f.json } }));
      if (f.json.event === "status") {
        // The sensor's word on what is heard; it keeps coming while no audio flows.
        this.listening = f.json;
        this.dispatchEvent(new CustomEvent("listening", { detail: { status: f.json } }));
      }
      if (f.json.event === "hold") this.message("call on hold");
      if (f.json.event === "resume") this.message("call resumed");
    } else if (f.kind === KIND_END) {
      this.onEnd(f.json);
    }
  }

  /** Frame counting shared by PCM and Opus frames: a gap in `seq` is frames lost. */
  countFrame(f) {
    this.attempt = 0; // audio flows: the next failure starts a fresh retry series
    if (this.lastSeq !== null && f.seq !== ((this.lastSeq + 1) >>> 0)) {
      this.droppedFrames += (f.seq - this.lastSeq - 1) >>> 0;
    }
    this.lastSeq = f.seq;
  }

  /** An Opus packet: decoded by WebCodecs, whose output joins the PCM path in onDecoded. */
  onOpus(f) {
    this.countFrame(f);
    const d = this.opusDecoderFor(f.channels);
    if (!d) return;
    try {
      d.decode(new EncodedAudioChunk({ type: "key", timestamp: Math.round(f.captureMs * 1000), data: f.packet }));
    } catch (e) {
      this.opusFailed(e);
    }
  }

  opusDecoderFor(channels) {
    const d = this.opusDecoder;
    if (d && d.state === "configured" && this.opusChannels === channels) return d;
    if (d && d.state !== "closed") d.close();
    try {
      this.opusDecoder = new AudioDecoder({ output: (data) => this.onDecoded(data), error: (e) => this.opusFailed(e) });
      this.opusDecoder.configure({ codec: "opus", sampleRate: 48000, numberOfChannels: channels });
      this.opusChannels = channels;
      return this.opusDecoder;
    } catch (e) {
      this.opusFailed(e);
      return null;
    }
  }

  /** The browser's Opus decoder failed: say so and listen on in PCM. */
  opusFailed(e) {
    if (!this.opus) return;
    this.opus = false;
    this.rate = this.rateAsked || 48000;
    this.message(`the browser's Opus decoder failed (${e && e.message ? e.message : e}): listening in PCM`, "warn");
    if (this.opusDecoder && this.opusDecoder.state !== "closed") this.opusDecoder.close();
    this.opusDecoder = null;
    if (!this.stopped && !this.ended && this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close();
      this.connect("now");
    }
  }

  /** Decoded Opus (an AudioData, 48 kHz from Chromium's decoder) to the worklet and the WAV. */
  onDecoded(data) {
    if (this.stopped || !this.node) return data.close();
    const n = data.numberOfFrames;
    const l = new Float32Array(n);
    const r = new Float32Array(n);
    data.copyTo(l, { planeIndex: 0, format: "f32-planar" });
    if (data.numberOfChannels > 1) data.copyTo(r, { planeIndex: 1, format: "f32-planar" });
    else r.set(l);
    const rate = data.sampleRate;
    const channels = data.numberOfChannels > 1 ? 2 : 1;
    const ts = data.timestamp / 1000;
    data.close();
    const samples = new Int16Array(n * channels);
    for (let i = 0; i < n; i++) {
      samples[i * channels] = Math.max(-32768, Math.min(32767, Math.round(l[i] * 32768)));
      if (channels === 2) samples[i * 2 + 1] = Math.max(-32768, Math.min(32767, Math.round(r[i] * 32768)));
    }
    this.keep({ rate, channels, samples });
    this.node.port.postMessage({ type: "pcm", l, r, rate, ts }, [l.buffer, r.buffer]);
  }

  onAudio(f) {
    this.countFrame(f);
    const n = f.samples.length / f.channels;
    const l = new Float32Array(n);
    const r = new Float32Array(n);
    const s = f.samples;
    if (f.channels === 2) {
      for (let i = 0, j = 0; i < n; i++, j += 2) {
        l[i] = s[j] / 32768;
        r[i] = s[j + 1] / 32768;
      }
    } else {
      for (let i = 0; i < n; i++) l[i] = r[i] = s[i] / 32768;
    }
    this.node.port.postMessage({ type: "pcm", l, r, rate: f.rate, ts: f.captureMs }, [l.buffer, r.buffer]);
    this.keep(f);
  }

  keep(f) {
    const rec = this.record;
    if (!rec.rate) {
      rec.rate = f.rate;
      rec.channels = f.channels;
    }
    if (f.rate !== rec.rate || f.channels !== rec.channels) return; // a format change: keep the first
    if (rec.samples / rec.channels >= this.maxRecordSeconds * rec.rate) {
      rec.truncated = true;
      return;
    }
    rec.chunks.push(f.samples);
    rec.samples += f.samples.length;
  }

  onEnd(end) {
    const reason = end && end.reason;
    if (reason === "overflow" || reason === "server_shutdown" || reason === "error") {
      // Transient: the close that follows reconnects.
      this.transientError = `stream ended: ${reason}${end.detail ? ` (${end.detail})` : ""}`;
      this.message(this.transientError, "warn");
      return;
    }
    this.ended = true;
    this.node && this.node.port.postMessage({ type: "end" });
    this.setState("ended");
    this.message("call ended" + (end && end.detail ? `: ${end.detail}` : ""), "info");
    if (this.ws) this.ws.close();
  }

  async onClose() {
    if (this.stopped || this.ended) return;
    if (this.fatal) return this.fail(this.fatal);
    // A token serves one session: reconnecting with it would only be refused.
    if (this.token) {
      return this.fail(this.transientError || "the connection closed; a listen token serves one session: the page must ask its server for a new one to listen again");
    }
    if (!this.gotHeader) {
      // The upgrade was refused (the browser hides the status): see whether we are still logged in.
      try {
        const r = await fetch(new URL("/api/me", this.base), { credentials: "same-origin" });
        if (r.status === 401) return this.fail("your session has expired: log in again");
      } catch {
        /* network down: retry below */
      }
    }
    if (this.stopped) return;
    if (this.attempt >= RETRY_DELAYS_MS.length) {
      return this.fail(`connection lost; gave up after ${this.attempt} attempts${this.transientError ? ` (${this.transientError})` : ""}`);
    }
    const delay = RETRY_DELAYS_MS[this.attempt++];
    this.setState("reconnecting");
    this.message(`connection lost; reconnecting in ${delay / 1000} s (attempt ${this.attempt} of ${RETRY_DELAYS_MS.length})`, "warn");
    this.retryTimer = setTimeout(() => {
      if (!this.stopped && !this.ended) this.connect("now");
    }, delay);
  }

  fail(text) {
    this.message(text, "error");
    this.setState("error");
    this.node && this.node.port.postMessage({ type: "end" });
  }

  onWorklet(m) {
    if (m.type !== "stats") return;
    this.samplesPlayed = m.samplesPlayed;
    this.sampleRate = m.sampleRate;
    const ctx = this.ctx;
    const out = ((ctx.outputLatency || 0) + (ctx.baseLatency || 0)) * 1000;
    this.stats = {
      samplesPlayed: m.samplesPlayed,
      secondsPlayed: m.samplesPlayed / m.sampleRate,
      depthMs: m.depth * 1000,
      targetMs: m.target * 1000,
      underruns: m.underruns,
      catchUps: m.skips,
      latencyMs: m.behindMs === null ? null : m.behindMs + out,
      outputLatencyMs: out,
      droppedFrames: this.droppedFrames,
      bytesReceived: this.bytesReceived,
      bytesPerSecond: this.receiveRate(),
      codec: this.opus ? "opus" : "pcm",
      rate: this.rate,
      worklet: m.state,
    };
    if (!this.stopped && !this.ended && (this.state === "buffering" || this.state === "playing")) {
      this.setState(m.state === "playing" ? "playing" : "buffering");
    }
    this.dispatchEvent(new CustomEvent("stats", { detail: this.stats }));
  }

  /** Bytes received per second over the last two seconds or more (null before the first). */
  receiveRate() {
    const now = performance.now();
    const mark = this.rxMark;
    if (!mark) {
      this.rxMark = { t: now, bytes: this.bytesReceived };
      return null;
    }
    if (now - mark.t >= 2000) {
      this.rxPerSecond = ((this.bytesReceived - mark.bytes) * 1000) / (now - mark.t);
      this.rxMark = { t: now, bytes: this.bytesReceived };
    }
    return this.rxPerSecond ?? null;
  }

  /** Stops listening (no reconnection). Received audio stays available for download. */
  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close();
    }
    if (this.opusDecoder && this.opusDecoder.state !== "closed") this.opusDecoder.close();
    this.opusDecoder = null;
    if (this.nodes) {
      const t = this.ctx.currentTime;
      // Fade out, then disconnect.
      this.master.gain.cancelScheduledValues(t);
      this.master.gain.setValueAtTime(this.master.gain.value, t);
      this.master.gain.linearRampToValueAtTime(0, t + 0.03);
      const nodes = this.nodes;
      setTimeout(() => nodes.forEach((n) => n.disconnect()), 60);
      this.node.port.onmessage = null;
    }
    if (!this.ended && this.state !== "error") this.setState("stopped");
  }

  /** What was received so far, as a WAV Blob (null when nothing was). */
  wav() {
    const r = this.record;
    if (!r.samples) return null;
    return wavBlob(r.chunks, r.rate, r.channels);
  }
}

function normalizeFrom(v) {
  const s = String(v ?? "now").trim().toLowerCase();
  if (s === "" || s === "now") return "now";
  if (s === "start") return "start";
  const n = Math.round(Math.abs(Number(s)));
  if (!Number.isFinite(n)) return "now";
  return n === 0 ? "now" : `-${Math.min(n, 999999)}`;
}

// ---- <earshot-player> ----

const TEMPLATE = `
<style>
  :host { display: block; font: inherit; color: inherit; --earshot-accent: #0a58ca; --earshot-bg: #f6f7f9; }
  .box { border: 1px solid #ccd; border-radius: 8px; padding: 0.8em 1em; background: var(--earshot-bg); }
  .top { display: flex; flex-wrap: wrap; gap: 0.4em 1em; align-items: baseline; justify-content: space-between; }
  .title { font-weight: 600; overflow-wrap: anywhere; }
  .state { font-weight: 600; }
  .state[data-state="playing"] { color: #146c2e; }
  .state[data-state="ended"], .state[data-state="error"] { color: #b02a37; }
  .parties { display: grid; grid-template-columns: 1fr 1fr; gap: 0.8em; margin: 0.6em 0; }
  @media (max-width: 520px) { .parties { grid-template-columns: 1fr; } }
  .party { border: 1px solid #dde; border-radius: 6px; padding: 0.5em 0.7em; background: #fff; min-width: 0; }
  .party h3 { margin: 0 0 0.3em; font-size: 1em; overflow-wrap: anywhere; }
  .side { font-weight: normal; color: #555; font-size: 0.85em; }
  .meter { height: 0.7em; background: #e4e6ea; border-radius: 4px; overflow: hidden; margin: 0.3em 0; }
  .meter > div { height: 100%; width: 0; background: linear-gradient(90deg, #2f9e44, #f59f00 80%, #e03131); transition: width 60ms linear; }
  button { font: inherit; padding: 0.35em 0.8em; border-radius: 5px; border: 1px solid #889; background: #fff; cursor: pointer; min-height: 2.2em; }
  button[aria-pressed="true"] { background: var(--earshot-accent); color: #fff; border-color: var(--earshot-accent); }
  button:disabled { opacity: 0.5; cursor: default; }
  button:focus-visible, input:focus-visible { outline: 3px solid #ffbf47; outline-offset: 1px; }
  .q { font-size: 0.85em; color: #333; margin-top: 0.3em; font-variant-numeric: tabular-nums; }
  .controls { display: flex; flex-wrap: wrap; gap: 0.5em 0.8em; align-items: center; }
  .stats { display: flex; flex-wrap: wrap; gap: 0.2em 1.2em; margin: 0.6em 0 0; font-size: 0.9em; font-variant-numeric: tabular-nums; }
  .stats div { display: flex; gap: 0.3em; }
  .stats dt { color: #555; }
  .stats dd { margin: 0; }
  .msg { margin: 0.4em 0 0; min-height: 1.2em; }
  .why { font-size: 0.85em; color: #8a5300; min-height: 1.2em; margin-top: 0.2em; }
  .listening { margin: 0.3em 0 0; color: #8a5300; font-weight: 600; min-height: 1.2em; }
  .msg[data-level="error"] { color: #b02a37; }
  .msg[data-level="warn"] { color: #8a5300; }
</style>
<section class="box" part="box" aria-label="Player">
  <div class="top">
    <span class="title" part="title">No call selected</span>
    <span class="state" role="status" aria-live="polite" data-state="idle">idle</span>
  </div>
  <div class="parties">
    <div class="party" data-party="caller">
      <h3><span class="side">left · caller</span> <span class="name">–</span></h3>
      <div class="meter" role="meter" aria-label="caller level" aria-valuemin="-60" aria-valuemax="0" aria-valuenow="-60"><div></div></div>
      <button type="button" class="mute" aria-pressed="false" aria-label="Mute caller">Mute</button>
      <button type="button" class="solo" aria-pressed="false" aria-label="Solo caller">Solo</button>
      <div class="q">quality: –</div>
      <div class="why" role="status"></div>
    </div>
    <div class="party" data-party="called">
      <h3><span class="side">right · called</span> <span class="name">–</span></h3>
      <div class="meter" role="meter" aria-label="called level" aria-valuemin="-60" aria-valuemax="0" aria-valuenow="-60"><div></div></div>
      <button type="button" class="mute" aria-pressed="false" aria-label="Mute called">Mute</button>
      <button type="button" class="solo" aria-pressed="false" aria-label="Solo called">Solo</button>
      <div class="q">quality: –</div>
      <div class="why" role="status"></div>
    </div>
  </div>
  <p class="listening" role="status" aria-live="polite"></p>
  <div class="controls">
    <button type="button" class="play">Play</button>
    <button type="button" class="stop" disabled>Stop</button>
    <label>Volume <input type="range" class="volume" min="0" max="200" step="5" value="100" aria-valuetext="100 %"></label>
    <button type="button" class="download" disabled>Download WAV</button>
  </div>
  <dl class="stats">
    <div><dt>Elapsed</dt><dd class="elapsed">0:00</dd></div>
    <div><dt>Latency</dt><dd class="latency">–</dd></div>
    <div><dt>Buffer</dt><dd class="buffer">–</dd></div>
    <div><dt>Underruns</dt><dd class="underruns">0</dd></div>
    <div><dt>Lost frames</dt><dd class="dropped">0</dd></div>
    <div><dt>Stream</dt><dd class="stream">–</dd></div>
  </dl>
  <p class="msg" aria-live="polite"></p>
</section>`;

const STATE_TEXT = {
  idle: "idle",
  connecting: "connecting…",
  buffering: "buffering…",
  playing: "playing",
  reconnecting: "reconnecting…",
  ended: "call ended",
  stopped: "stopped",
  error: "error",
};

/**
 * <earshot-player sensor="1" callref="4a3f7b2c1d" start="now|start|N" rate="16000" codec="auto|opus|pcm" autoplay>
 * Needs a logged-in user with the listener role on the same origin as the player, or, on
 * another site's page, token="…" (minted by that site's backend with an API key, docs/api.md)
 * and src-origin="https://player.example.com" (default: where this module was loaded from).
 * Methods: play(), stop(), download(). Property: session (the ListenSession).
 * Events (bubbling, composed): earshot-state {state}, earshot-message {text, level}.
 */
export class EarshotPlayerElement extends HTMLElement {
  static get observedAttributes() {
    return ["callref", "sensor", "start", "token"];
  }

  constructor() {
    super();
    const root = this.attachShadow({ mode: "open" });
    root.innerHTML = TEMPLATE;
    this.$ = (sel) => root.querySelector(sel);
    this.session = null;
    this.raf = 0;
    this.$(".play").addEventListener("click", () => this.play());
    this.$(".stop").addEventListener("click", () => this.stop());
    this.$(".download").addEventListener("click", () => this.download());
    this.$(".volume").addEventListener("input", (ev) => {
      const v = Number(ev.target.value) / 100;
      ev.target.setAttribute("aria-valuetext", `${ev.target.value} %`);
      this.volume = v;
      this.session && this.session.setVolume(v);
    });
    this.volume = 1;
    for (const party of ["caller", "called"]) {
      const box = this.$(`.party[data-party="${party}"]`);
      for (const what of ["mute", "solo"]) {
        const b = box.querySelector(`.${what}`);
        b.addEventListener("click", () => {
          const on = b.getAttribute("aria-pressed") !== "true";
          b.setAttribute("aria-pressed", String(on));
          if (this.session) what === "mute" ? this.session.setMute(party, on) : this.session.setSolo(party, on);
        });
      }
    }
    this.renderTitle();
  }

  connectedCallback() {
    if (this.hasAttribute("autoplay") && this.getAttribute("callref")) queueMicrotask(() => this.play());
  }

  disconnectedCallback() {
    this.stop();
  }

  attributeChangedCallback() {
    if (!this.session) this.renderTitle();
  }

  renderTitle(h) {
    const callref = this.getAttribute("callref");
    this.$(".title").textContent = h
      ? `${h.caller || "?"} → ${h.called || "?"}`
      : callref
        ? `call ${callref}${this.getAttribute("sensor") ? ` on sensor ${this.getAttribute("sensor")}` : ""}`
        : this.getAttribute("token")
          ? "live call"
          : "No call selected";
    this.$(".title").title = h ? `Call-ID ${h.callid || "?"} · ref ${h.callreference}` : "";
    this.$(".party[data-party=caller] .name").textContent = (h && h.caller) || "–";
    this.$(".party[data-party=called] .name").textContent = (h && h.called) || "–";
    this.$(".play").disabled = !callref && !this.getAttribute("token");
  }

  /** Mute/solo as currently pressed. */
  pressed(party, what) {
    return this.$(`.party[data-party="${party}"] .${what}`).getAttribute("aria-pressed") === "true";
  }

  /** Starts (or restarts) listening to the call the attributes name. */
  play() {
    const callref = this.getAttribute("callref");
    const token = this.getAttribute("token");
    if (!callref && !token) return;
    this.stop();
    const s = new ListenSession({
      callref,
      token,
      base: this.getAttribute("src-origin") || undefined,
      sensorId: this.getAttribute("sensor"),
      from: this.getAttribute("start") || "now",
      rate: Number(this.getAttribute("rate")) || undefined,
      codec: this.getAttribute("codec") || "auto",
    });
    this.session = s;
    for (const party of ["caller", "called"]) {
      s.mute[party] = this.pressed(party, "mute");
      s.solo[party] = this.pressed(party, "solo");
      this.$(`.party[data-party="${party}"] .q`).textContent = "quality: –";
    }
    s.volume = this.volume;
    this.setMessage("", "info");
    s.addEventListener("state", (e) => this.onState(e.detail.state));
    s.addEventListener("header", (e) => this.renderTitle(e.detail.header));
    s.addEventListener("message", (e) => this.setMessage(e.detail.text, e.detail.level));
    s.addEventListener("quality", (e) => this.renderQuality(e.detail.leg, e.detail.report));
    s.addEventListener("listening", (e) => this.renderListening(e.detail.status));
    s.addEventListener("stats", (e) => this.renderStats(e.detail));
    this.$(".stop").disabled = false;
    this.$(".download").disabled = true;
    s.start().catch((e) => s.fail(String(e.message || e)));
    this.dispatchEvent(new CustomEvent("earshot-session", { detail: { session: s }, bubbles: true, composed: true }));
    this.loop();
  }

  stop() {
    if (this.session) this.session.stop();
    this.$(".stop").disabled = true;
    cancelAnimationFrame(this.raf);
    this.raf = 0;
    this.setMeters(-Infinity, -Infinity);
  }

  download() {
    const blob = this.session && this.session.wav();
    if (!blob) return;
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = `earshot-${this.session.callref}.wav`;
    this.shadowRoot.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 60000);
  }

  onState(state) {
    const el = this.$(".state");
    el.textContent = STATE_TEXT[state] || state;
    el.dataset.state = state;
    if (state === "ended" || state === "error" || state === "stopped") this.$(".stop").disabled = state !== "ended";
    this.dispatchEvent(new CustomEvent("earshot-state", { detail: { state }, bubbles: true, composed: true }));
  }

  setMessage(text, level) {
    const el = this.$(".msg");
    el.textContent = text;
    el.dataset.level = level;
    if (text) this.dispatchEvent(new CustomEvent("earshot-message", { detail: { text, level }, bubbles: true, composed: true }));
  }

  /** Shows why the call is silent: for the call as a whole, or in one party's box. */
  renderListening(st) {
    const codec = st.codec ? String(st.codec) : "its codec";
    const text = {
      waiting_for_media: "waiting for media",
      on_hold: "on hold",
      undecodable: `cannot decode ${codec}`,
      encrypted: "encrypted (SRTP), no key: silence",
    }[st.state] || "";
    const one = (st.state === "undecodable" || st.state === "encrypted") && (st.party === "caller" || st.party === "called");
    this.$(".listening").textContent = one ? "" : text;
    this.$(".listening").dataset.state = st.state || "";
    for (const party of ["caller", "called"]) {
      this.$(`.party[data-party="${party}"] .why`).textContent = one && st.party === party ? text : "";
    }
  }

  renderQuality(leg, q) {
    const f = (v, d = 1) => (typeof v === "number" && Number.isFinite(v) ? v.toFixed(d) : "–");
    this.$(`.party[data-party="${leg}"] .q`).textContent =
      `MOS ${f(q.mos)} · loss ${f(q.loss_pct)} % (${q.lost ?? "–"}/${q.packets ?? "–"}) · jitter ${f(q.jitter_ms)} ms`;
    // Why the sensor sent no MOS (or jitter): a codec it cannot decode, an unknown clock...
    const why = {
      undecodable: "the codec cannot be decoded",
      clock_unknown: "clock rate unknown",
      events_only: "telephone-events only",
      video: "video",
    }[q.quality_unknown];
    this.$(`.party[data-party="${leg}"] .q`).title = why ? `MOS unknown: ${why}` : "";
  }

  renderStats(s) {
    this.$(".elapsed").textContent = fmtDuration(s.secondsPlayed);
    this.$(".latency").textContent = s.latencyMs == null ? "–" : `${Math.round(s.latencyMs)} ms`;
    this.$(".buffer").textContent = `${Math.round(s.depthMs)} ms (target ${Math.round(s.targetMs)})`;
    this.$(".underruns").textContent = String(s.underruns);
    this.$(".dropped").textContent = String(s.droppedFrames);
    const kbs = s.bytesPerSecond == null ? "" : ` · ${(s.bytesPerSecond / 1000).toFixed(1)} KB/s`;
    this.$(".stream").textContent = `${s.codec === "opus" ? "Opus" : "PCM"} ${s.rate / 1000} kHz${kbs}`;
    this.$(".download").disabled = !(this.session && this.session.record.samples);
  }

  setMeters(l, r) {
    for (const [party, db] of [["caller", l], ["called", r]]) {
      const m = this.$(`.party[data-party="${party}"] .meter`);
      const v = Math.max(-60, Math.min(0, Number.isFinite(db) ? db : -60));
      m.firstElementChild.style.width = `${((v + 60) / 60) * 100}%`;
      m.setAttribute("aria-valuenow", String(Math.round(v)));
    }
  }

  loop() {
    cancelAnimationFrame(this.raf);
    let last = 0;
    const tick = (t) => {
      const s = this.session;
      if (!s || s.stopped) return;
      if (t - last > 50) {
        last = t;
        const lv = s.levels();
        this.setMeters(lv.caller, lv.called);
      }
      this.raf = requestAnimationFrame(tick);
    };
    this.raf = requestAnimationFrame(tick);
  }
}

if (!customElements.get("earshot-player")) customElements.define("earshot-player", EarshotPlayerElement);
