//! A HEP envelope's capture time is the sender's word: with `hep_max_skew_ns` set (the live
//! sensor), one too far from the time the datagram arrived is replaced by it, and counted.

use earshot_wire::{DecapConfig, Decapsulator, LinkType, Timestamp};

fn chunk(ctype: u16, val: &[u8]) -> Vec<u8> {
    let mut c = vec![0, 0];
    c.extend_from_slice(&ctype.to_be_bytes());
    c.extend_from_slice(&((6 + val.len()) as u16).to_be_bytes());
    c.extend_from_slice(val);
    c
}

fn hep3(secs: u32, usecs: u32) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(chunk(1, &[2]));
    body.extend(chunk(2, &[17]));
    body.extend(chunk(3, &[192, 0, 2, 1]));
    body.extend(chunk(4, &[192, 0, 2, 2]));
    body.extend(chunk(7, &4000u16.to_be_bytes()));
    body.extend(chunk(8, &6000u16.to_be_bytes()));
    body.extend(chunk(9, &secs.to_be_bytes()));
    body.extend(chunk(10, &usecs.to_be_bytes()));
    body.extend(chunk(15, &[0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]));
    let mut d = b"HEP3".to_vec();
    d.extend_from_slice(&((6 + body.len()) as u16).to_be_bytes());
    d.extend(body);
    d
}

const RECEIVED: i64 = 1_700_000_000_000_000_000;
const SKEW: i64 = 10_000_000_000;

fn decoded_ts(d: &mut Decapsulator, secs: u32, usecs: u32) -> Timestamp {
    let mut got = Vec::new();
    d.decode(
        Timestamp(RECEIVED),
        LinkType::HEP,
        &hep3(secs, usecs),
        &mut |p| got.push(p.ts),
    );
    assert_eq!(got.len(), 1);
    got[0]
}

#[test]
fn envelope_times_far_from_receipt_are_replaced_and_counted() {
    let mut d = Decapsulator::with_config(DecapConfig {
        hep_max_skew_ns: Some(SKEW),
        ..DecapConfig::default()
    });
    // Close to the time of receipt: the agent's capture time is kept.
    assert_eq!(
        decoded_ts(&mut d, 1_700_000_003, 500_000),
        Timestamp(RECEIVED + 3_500_000_000)
    );
    assert_eq!(
        decoded_ts(&mut d, 1_699_999_995, 0),
        Timestamp(RECEIVED - 5_000_000_000)
    );
    assert_eq!(d.stats().hep_time_replaced, 0);
    // 2106, an hour ahead, the epoch, a day back: the time of receipt.
    for secs in [u32::MAX, 1_700_003_600, 0, 1_699_913_600] {
        assert_eq!(decoded_ts(&mut d, secs, 999_999), Timestamp(RECEIVED));
    }
    assert_eq!(d.stats().hep_time_replaced, 4);
}

#[test]
fn without_a_skew_limit_the_envelope_is_the_record() {
    let mut d = Decapsulator::new();
    assert_eq!(
        decoded_ts(&mut d, u32::MAX, 0),
        Timestamp(i64::from(u32::MAX) * 1_000_000_000)
    );
    assert_eq!(d.stats().hep_time_replaced, 0);
}
