//! `earshot ladder FILE CALL-ID`: one call's SIP messages as a ladder diagram in the terminal,
//! the way sngrep's call flow shows them.

use crate::report::rfc3339;
use anyhow::{bail, Result};
use earshot_core::{Call, Config, Engine, NullSink};
use earshot_manager::ladder::{self, Arrow, Ladder};
use earshot_manager::listcalls::SipPacket;
use earshot_wire::Timestamp;
use std::io::Write;
use std::path::PathBuf;

/// Show one call's SIP messages as a ladder: a column per address, an arrow per message.
///
/// The capture is read as `earshot analyze` reads it (pcap, pcapng, gzip; SIP over UDP, TCP,
/// WebSocket, SCTP, and TLS with --tls-keylog). Each column is a signalling address (ip:port),
/// in the order the messages first name it; each arrow is one message with its time since
/// the call's first message: a request by its method, a response by its status and reason,
/// "(SDP)" when it carries SDP. `earshot analyze FILE` lists the calls and their Call-IDs.
///
/// Examples:
///   earshot ladder call.pcap 'a84b4c76e66710@pc33.atlanta.example.com'
///   earshot ladder call.pcap 'a84b4c76e66710@pc33.atlanta.example.com' --full | less
///   earshot analyze --json call.pcap | jq -r '.calls[].call_id'    # the Call-IDs
///
/// A long call shows its first --max messages and says how many were left out.
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Capture file (pcap, pcapng, optionally .gz).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The call's Call-ID, as `earshot analyze` shows it.
    #[arg(value_name = "CALL-ID")]
    call_id: String,
    /// Also print each message's text, numbered as its arrow.
    #[arg(long)]
    full: bool,
    /// Draw at most this many messages (1 to 10000).
    #[arg(long, value_name = "N", default_value_t = 200,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    max: u32,
    #[command(flatten)]
    keylog: crate::tls_keylog::KeyLogArgs,
}

/// The longest message text kept: a SIP message over TCP fits in 64 KiB.
const MESSAGE_BYTES: usize = 64 << 10;
/// What one call's log may hold: 256 whole 64 KiB messages, or 10,000 of a few KB.
const CALL_BYTES: usize = 32 << 20;
/// Call-IDs named when the one asked for is not in the capture.
const NAMED_CALL_IDS: usize = 20;

pub fn run(args: Args) -> Result<()> {
    let max = args.max as usize;
    let cfg = Config {
        sip_log_messages: max,
        sip_log_bytes: MESSAGE_BYTES,
        sip_log_call_bytes: CALL_BYTES,
        // Only the asked-for call is logged, so its budget is the whole of it.
        sip_log_total_bytes: CALL_BYTES,
        sip_log_call_id: Some(args.call_id.clone()),
        ..Config::default()
    };
    let mut engine = Engine::new(cfg);
    args.keylog.load_into(&mut engine)?;
    crate::analyze::feed_file(&mut engine, &args.file)?;
    if let Some(last) = engine.counters().last_ts {
        engine.expire(last, &mut NullSink);
    }
    let calls: Vec<&Call> = engine
        .calls()
        .into_iter()
        .filter(|c| c.sip_call_id == args.call_id)
        .collect();
    if calls.is_empty() {
        bail!("{}", not_found(&engine, &args));
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for (i, call) in calls.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        write_call(&mut out, call, max, args.full)?;
    }
    out.flush()?;
    Ok(())
}

/// Why nothing is shown, and the Call-IDs the capture has (the first few).
fn not_found(engine: &Engine, args: &Args) -> String {
    let calls = engine.calls();
    let file = args.file.display();
    if calls.is_empty() {
        return format!("{file} has no SIP calls (no INVITE dialogs): nothing to draw");
    }
    let mut ids: Vec<&str> = Vec::new();
    for c in &calls {
        if !ids.contains(&c.sip_call_id.as_str()) {
            ids.push(&c.sip_call_id);
        }
    }
    let shown: Vec<String> = ids
        .iter()
        .take(NAMED_CALL_IDS)
        .map(|id| format!("  {id}"))
        .collect();
    let more = match ids.len().saturating_sub(NAMED_CALL_IDS) {
        0 => String::new(),
        n => format!("\n  … and {n} more: `earshot analyze {file}` lists them all"),
    };
    format!(
        "no call with Call-ID {:?} in {file}; its calls' Call-IDs are:\n{}{more}",
        args.call_id,
        shown.join("\n")
    )
}

fn write_call(out: &mut impl Write, call: &Call, max: usize, full: bool) -> Result<()> {
    let packets: Vec<SipPacket> = call
        .sip_log
        .iter()
        .map(|m| SipPacket {
            ts_ns: m.ts.nanos(),
            src: m.src,
            dst: m.dst,
            text: m.text.clone(),
            truncated: m.truncated,
        })
        .collect();
    let l = ladder::build(&packets, max, MESSAGE_BYTES);
    // The engine stops logging at --max (or the byte budget): what it counted but did not
    // keep was left out too.
    let left_out = l.left_out + (call.sip_messages as usize).saturating_sub(packets.len());
    let start = packets.first().map_or(call.start, |p| Timestamp(p.ts_ns));
    writeln!(
        out,
        "Call-ID {}  {} → {}  {} SIP messages from {}",
        call.sip_call_id,
        or_dash(&call.caller),
        or_dash(&call.called),
        call.sip_messages,
        rfc3339(start)
    )?;
    writeln!(out)?;
    out.write_all(render(&l).as_bytes())?;
    if left_out > 0 {
        writeln!(
            out,
            "… {left_out} more messages left out (the first {} are drawn; --max N draws more)",
            l.arrows.len()
        )?;
    }
    if full {
        for (i, a) in l.arrows.iter().enumerate() {
            write_text(out, &l, i, a)?;
        }
    }
    Ok(())
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() {
        "-"
    } else {
        s
    }
}

fn write_text(out: &mut impl Write, l: &Ladder, i: usize, a: &Arrow) -> Result<()> {
    writeln!(
        out,
        "\n[{}] +{:.3} s  {} → {}  {}{}{}{}",
        i + 1,
        a.offset_ms / 1000.0,
        l.columns[a.from],
        l.columns[a.to],
        a.label,
        a.transport
            .as_deref()
            .map_or(String::new(), |t| format!("  over {t}")),
        if a.retransmission {
            "  (retransmission)"
        } else {
            ""
        },
        if a.truncated {
            "  (cut: not all of it was kept)"
        } else {
            ""
        }
    )?;
    for line in a.text.lines() {
        // Control characters of a hostile message must not drive the terminal.
        let clean: String = line
            .chars()
            .map(|c| if c.is_control() { '·' } else { c })
            .collect();
        writeln!(out, "    {clean}")?;
    }
    Ok(())
}

/// Width of the left margin: the arrow's number and its time, `  12   +10.250 s `.
const MARGIN: usize = 18;

/// The ladder as text: a header line of addresses, then one line per arrow, each column a
/// `|` and each arrow `|--INVITE (SDP)-->|` or `|<--200 OK--|` between its two columns.
pub fn render(l: &Ladder) -> String {
    let longest_label = l.arrows.iter().map(|a| a.label.chars().count()).max();
    let longest_addr = l.columns.iter().map(|c| c.chars().count()).max();
    let width = (longest_label.unwrap_or(0) + 6)
        .max(longest_addr.unwrap_or(0) + 2)
        .clamp(20, 48);
    let center = |i: usize| MARGIN + i * width + width / 2;
    let line_len = MARGIN + l.columns.len() * width;
    let mut text = String::new();
    let mut head = vec![' '; line_len];
    for (i, c) in l.columns.iter().enumerate() {
        let name: Vec<char> = c.chars().take(width - 1).collect();
        let at = center(i).saturating_sub(name.len() / 2);
        put(&mut head, at, &name);
    }
    push_line(&mut text, &head);
    let mut bars = vec![' '; line_len];
    for i in 0..l.columns.len() {
        bars[center(i)] = '|';
    }
    push_line(&mut text, &bars);
    for (n, a) in l.arrows.iter().enumerate() {
        let mut line = bars.clone();
        let time = format!("+{:.3} s", a.offset_ms / 1000.0);
        let margin: Vec<char> = format!("{:>4}  {time:>10}", n + 1)
            .chars()
            .take(MARGIN - 1)
            .collect();
        put(&mut line, 0, &margin);
        draw_arrow(&mut line, center(a.from), center(a.to), &a.label);
        push_line(&mut text, &line);
        if a.retransmission {
            // Right of the ladder, as sngrep marks a message seen before.
            text.pop();
            text.push_str("   (retransmission)\n");
        }
    }
    text
}

/// Draws one arrow between two column centres (or a loop back to its own column).
fn draw_arrow(line: &mut Vec<char>, from: usize, to: usize, label: &str) {
    if from == to {
        let tail: Vec<char> = format!("<-' {label}").chars().collect();
        if line.len() < from + 1 + tail.len() {
            line.resize(from + 1 + tail.len(), ' ');
        }
        put(line, from + 1, &tail);
        return;
    }
    let (left, right) = (from.min(to), from.max(to));
    for c in &mut line[left + 1..right] {
        *c = '-';
    }
    if to > from {
        line[right - 1] = '>';
    } else {
        line[left + 1] = '<';
    }
    // Two dashes on each side at least (the head is one of them).
    let span = right - left - 1;
    let room = span.saturating_sub(4);
    let label: Vec<char> = label.chars().take(room).collect();
    let at = left + 1 + (span - label.len()) / 2;
    put(line, at, &label);
}

fn put(line: &mut [char], at: usize, s: &[char]) {
    for (i, c) in s.iter().enumerate() {
        if let Some(slot) = line.get_mut(at + i) {
            *slot = *c;
        }
    }
}

fn push_line(text: &mut String, line: &[char]) {
    let s: String = line.iter().collect();
    text.push_str(s.trim_end());
    text.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(ms: i64, src: &str, dst: &str, text: &str) -> SipPacket {
        SipPacket {
            ts_ns: ms * 1_000_000,
            src: src.parse().expect("address"),
            dst: dst.parse().expect("address"),
            text: text.into(),
            truncated: false,
        }
    }

    #[test]
    fn arrows_point_from_sender_to_receiver_with_their_label() {
        let a = "10.0.0.1:5060";
        let b = "10.0.0.2:5060";
        let l = ladder::build(
            &[
                packet(0, a, b, "INVITE sip:x SIP/2.0\r\n\r\n"),
                packet(1500, b, a, "SIP/2.0 200 OK\r\n\r\n"),
                packet(1600, a, a, "OPTIONS sip:x SIP/2.0\r\n\r\n"),
            ],
            10,
            100,
        );
        let text = render(&l);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains(a) && lines[0].contains(b), "{text}");
        assert!(lines[2].contains("+0.000 s"), "{text}");
        assert!(lines[2].contains("|------INVITE------>|"), "{text}");
        assert!(lines[3].contains("+1.500 s"), "{text}");
        assert!(lines[3].contains("|<-----200 OK-------|"), "{text}");
        assert!(lines[4].contains("|<-' OPTIONS"), "{text}");
    }
}
