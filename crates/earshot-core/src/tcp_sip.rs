//! SIP carried on TCP streams: plain SIP framed by Content-Length (RFC 3261 §18.3) and SIP
//! over WebSocket (RFC 7118), both after TCP reassembly.

use crate::signalling::SipMeta;
use earshot_sip::websocket::WsDecoder;
use earshot_sip::{frame_message, looks_like_sip, Framing};
use earshot_wire::tcp::{FlowKey, StreamEvent, TcpConfig, TcpReassembler};
use earshot_wire::{Packet, Timestamp};
use rustc_hash::FxHashMap;

/// Unclassified bytes kept before a flow is declared not to carry SIP.
const CLASSIFY_LIMIT: usize = 4096;
/// A SIP message never legitimately needs more than this much buffered.
const MAX_BUFFER: usize = 1 << 20;
/// Flows whose classification is remembered; the map is cleared when it grows past this.
const MAX_FLOWS: usize = 65_536;

enum Kind {
    Unknown,
    Sip,
    WebSocket(Box<WsDecoder>),
    NotSip,
}

struct FlowState {
    kind: Kind,
    buf: Vec<u8>,
    vlan: Option<u16>,
}

pub(crate) struct TcpSip {
    reasm: TcpReassembler,
    flows: FxHashMap<FlowKey, FlowState>,
}

impl Default for TcpSip {
    fn default() -> Self {
        TcpSip {
            reasm: TcpReassembler::new(TcpConfig::default()),
            flows: FxHashMap::default(),
        }
    }
}

impl TcpSip {
    /// Feeds a TCP packet; `out` receives each complete SIP message found.
    pub(crate) fn push(&mut self, p: &Packet<'_>, out: &mut dyn FnMut(SipMeta, &[u8])) {
        let key = FlowKey {
            src: p.src,
            dst: p.dst,
        };
        if p.from_hep {
            // HEP agents send whole SIP messages, one per HEP packet.
            if looks_like_sip(p.payload) {
                out(
                    SipMeta {
                        ts: p.ts,
                        src: p.src,
                        dst: p.dst,
                        vlan: p.vlan,
                    },
                    p.payload,
                );
            }
            return;
        }
        if matches!(
            self.flows.get(&key),
            Some(FlowState {
                kind: Kind::NotSip,
                ..
            })
        ) {
            return;
        }
        if self.flows.len() >= MAX_FLOWS && !self.flows.contains_key(&key) {
            self.flows.clear();
        }
        self.flows.entry(key).or_insert_with(|| FlowState {
            kind: Kind::Unknown,
            buf: Vec::new(),
            vlan: p.vlan,
        });
        let flows = &mut self.flows;
        self.reasm.packet(p, &mut |ev: StreamEvent<'_>| match ev {
            StreamEvent::Data { flow, ts, data } => {
                if let Some(state) = flows.get_mut(&flow) {
                    state.feed(flow, ts, data, out);
                }
            }
            StreamEvent::Gap { flow, .. } => {
                if let Some(state) = flows.get_mut(&flow) {
                    state.resync();
                }
            }
            StreamEvent::Closed { flow, .. } => {
                flows.remove(&flow);
            }
        });
    }

    pub(crate) fn expire(&mut self, now: Timestamp) {
        let flows = &mut self.flows;
        self.reasm.expire(now, &mut |ev: StreamEvent<'_>| {
            if let StreamEvent::Closed { flow, .. } = ev {
                flows.remove(&flow);
            }
        });
    }
}

impl FlowState {
    fn feed(
        &mut self,
        flow: FlowKey,
        ts: Timestamp,
        data: &[u8],
        out: &mut dyn FnMut(SipMeta, &[u8]),
    ) {
        let meta = SipMeta {
            ts,
            src: flow.src,
            dst: flow.dst,
            vlan: self.vlan,
        };
        if let Kind::WebSocket(ws) = &mut self.kind {
            ws.push(data, &mut |msg: &[u8]| {
                if looks_like_sip(msg) {
                    out(meta, msg);
                }
            });
            return;
        }
        if matches!(self.kind, Kind::NotSip) {
            return;
        }
        self.buf.extend_from_slice(data);
        if matches!(self.kind, Kind::Unknown) {
            self.classify();
            if let Kind::WebSocket(ws) = &mut self.kind {
                let pending = std::mem::take(&mut self.buf);
                ws.push(&pending, &mut |msg: &[u8]| {
                    if looks_like_sip(msg) {
                        out(meta, msg);
                    }
                });
                return;
            }
        }
        if matches!(self.kind, Kind::Sip) {
            self.drain_messages(meta, out);
        }
    }

    fn classify(&mut self) {
        let head = &self.buf[..self.buf.len().min(512)];
        let start = skip_crlf(head);
        let text = &head[start..];
        if text.starts_with(b"GET ") || text.starts_with(b"HTTP/1.1 101") {
            if contains_ignore_case(head, b"websocket") {
                self.kind = Kind::WebSocket(Box::default());
            } else if head.len() >= 512 {
                self.kind = Kind::NotSip;
            }
        } else if looks_like_sip(text) {
            self.kind = Kind::Sip;
        } else if let Some(pos) = find_sip_start(&self.buf) {
            // The capture began mid-message: start at the next message boundary.
            self.buf.drain(..pos);
            self.kind = Kind::Sip;
        } else if self.buf.len() > CLASSIFY_LIMIT {
            self.kind = Kind::NotSip;
            self.buf = Vec::new();
        }
    }

    fn drain_messages(&mut self, meta: SipMeta, out: &mut dyn FnMut(SipMeta, &[u8])) {
        let mut consumed = 0;
        loop {
            let rest = &self.buf[consumed..];
            match frame_message(rest) {
                Framing::Complete(n) if n > 0 => {
                    let msg = &rest[..n];
                    let start = skip_crlf(msg);
                    if start < msg.len() {
                        out(meta, &msg[start..]);
                    }
                    consumed += n;
                }
                Framing::KeepAlive(n) if n > 0 => consumed += n,
                Framing::Complete(_) | Framing::KeepAlive(_) | Framing::NeedMore => break,
                Framing::Invalid => match find_sip_start(&rest[1.min(rest.len())..]) {
                    Some(pos) => consumed += pos + 1,
                    None => {
                        consumed = self.buf.len();
                        break;
                    }
                },
            }
        }
        self.buf.drain(..consumed);
        if self.buf.len() > MAX_BUFFER {
            self.buf.clear();
        }
    }

    fn resync(&mut self) {
        self.buf.clear();
        if let Kind::WebSocket(ws) = &mut self.kind {
            **ws = WsDecoder::default();
        }
    }
}

fn skip_crlf(b: &[u8]) -> usize {
    b.iter()
        .position(|&c| c != b'\r' && c != b'\n')
        .unwrap_or(b.len())
}

/// Offset of the first line start (after a newline) that looks like a SIP start line.
fn find_sip_start(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(nl) = buf.get(i..)?.iter().position(|&c| c == b'\n') {
        let start = i + nl + 1;
        let line = buf.get(start..)?;
        if looks_like_sip(line) {
            return Some(start);
        }
        i = start;
    }
    None
}

fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}
