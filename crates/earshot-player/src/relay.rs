//! One sensor stream per call and format, shared by every browser listening to it from now.
//!
//! Without sharing, each browser tab opened its own `stream` on the sensor: 50 supervisors on
//! one call were 50 sensor connections, and the sensor (which limits listeners per call and
//! per client, the player being one client) refused the ninth. Here the first browser opens
//! the stream; later ones asking for the same call, rate, channels and format from now join
//! it and get the same frames, byte for byte, through a broadcast channel. A pump task reads
//! the sensor and never waits for a browser: one that falls behind by [`BACKLOG`] frames
//! (about five seconds of audio) loses its place, is told so and is dropped (counted). The
//! upstream closes once its last browser leaves (at the next frame: the sensor sends one every
//! 20 ms while audio flows, a status every 3 s while it does not).
//!
//! Streams from the call's start or N seconds ago each have their own timeline and are not
//! shared. The pump and the sharing are tested here in memory, with a scripted source.

use crate::error::ManagerError;
use crate::manager::StreamConn;
use axum::body::Bytes;
use earshot_manager::stream_proto::{KIND_END, KIND_EVENT, KIND_QUALITY};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// Frames a browser may fall behind the sensor before it is dropped: 256 frames of 20 ms is
/// about five seconds of audio; at most ~1 MB per upstream (48 kHz stereo PCM frames).
pub const BACKLOG: usize = 256;

/// What a browser's session receives from its upstream.
#[derive(Clone, Debug)]
pub enum Upstream {
    /// One stream frame, as the sensor sent it.
    Frame(Bytes),
    /// The sensor's stream failed.
    Failed(Arc<ManagerError>),
    /// The sensor closed the stream without an end frame.
    Closed,
    /// This browser fell more than [`BACKLOG`] frames behind and lost its place.
    Lagged,
}

/// Where a pump reads frames: the sensor's stream, or a script in tests.
pub trait FrameSource: Send + 'static {
    fn next_frame(&mut self) -> impl Future<Output = Result<Option<Vec<u8>>, ManagerError>> + Send;
}

impl FrameSource for StreamConn {
    fn next_frame(&mut self) -> impl Future<Output = Result<Option<Vec<u8>>, ManagerError>> + Send {
        StreamConn::next_frame(self)
    }
}

/// Which stream a browser asks for: sensor, normalised call reference, stream options.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RelayKey {
    pub sensor: i64,
    pub callref: String,
    pub options: String,
}

impl RelayKey {
    /// Only streams from now share a timeline.
    fn shareable(&self) -> bool {
        self.options.split_whitespace().any(|o| o == "from=now")
    }
}

/// One upstream: its header, the channel its frames go out on, and what a browser joining
/// late needs to show the call as it is (the latest status and quality of each party).
struct Upstreamed {
    header: Map<String, Value>,
    tx: broadcast::Sender<Upstream>,
    recent: Mutex<Recent>,
}

#[derive(Default)]
struct Recent {
    status: Option<Bytes>,
    quality: [Option<Bytes>; 2],
}

impl Recent {
    /// Keeps a status event or a quality report; other frames pass.
    fn remember(&mut self, f: &Bytes) {
        let Some(&kind) = f.first() else { return };
        if kind != KIND_EVENT && kind != KIND_QUALITY {
            return;
        }
        let Ok(v) = serde_json::from_slice::<Value>(f.get(5..).unwrap_or_default()) else {
            return;
        };
        if kind == KIND_EVENT && v["event"] == "status" {
            self.status = Some(f.clone());
        } else if kind == KIND_QUALITY {
            let slot = usize::from(v["leg"] == "called");
            self.quality[slot] = Some(f.clone());
        }
    }

    fn frames(&self) -> Vec<Bytes> {
        self.status
            .iter()
            .chain(self.quality.iter().flatten())
            .cloned()
            .collect()
    }
}

/// The player's upstreams, by what they carry.
#[derive(Default)]
pub struct Relays {
    live: Mutex<HashMap<RelayKey, Arc<Upstreamed>>>,
    /// Per stream being opened, the lock its openers take in turn: 500 browsers clicking one
    /// call at once open one sensor stream, not 500 (the sensor would refuse the ninth).
    opening: Mutex<HashMap<RelayKey, Arc<tokio::sync::Mutex<()>>>>,
    /// Sensor streams open now.
    pub upstreams: AtomicU64,
    /// Browsers that joined a stream already open instead of opening one.
    pub shared_joins: AtomicU64,
    /// Browsers dropped for falling [`BACKLOG`] frames behind.
    pub lagged: AtomicU64,
}

/// A browser's place on an upstream.
pub struct Joined {
    pub header: Map<String, Value>,
    /// Recent status and quality, sent before the live frames.
    first: std::vec::IntoIter<Bytes>,
    rx: broadcast::Receiver<Upstream>,
    relays: Arc<Relays>,
}

impl Joined {
    /// The next thing to send the browser; after anything but a `Frame` there is no more.
    pub async fn next(&mut self) -> Upstream {
        if let Some(f) = self.first.next() {
            return Upstream::Frame(f);
        }
        match self.rx.recv().await {
            Ok(u) => u,
            Err(broadcast::error::RecvError::Lagged(_)) => {
                self.relays.lagged.fetch_add(1, Ordering::Relaxed);
                Upstream::Lagged
            }
            Err(broadcast::error::RecvError::Closed) => Upstream::Closed,
        }
    }
}

impl Relays {
    /// The stream `key` names: joined if one from now is open, else opened with `open` (once,
    /// however many browsers ask for it at the same time).
    pub async fn join<S, F>(
        self: &Arc<Self>,
        key: RelayKey,
        open: F,
    ) -> Result<Joined, ManagerError>
    where
        S: FrameSource,
        F: Future<Output = Result<(Map<String, Value>, S), ManagerError>>,
    {
        if !key.shareable() {
            let (header, source) = open.await?;
            return Ok(self.start(key, header, source));
        }
        if let Some(joined) = self.join_open(&key) {
            return Ok(joined);
        }
        let turn = crate::lock(&self.opening)
            .entry(key.clone())
            .or_default()
            .clone();
        let result = {
            let _turn = turn.lock().await;
            match self.join_open(&key) {
                // Opened by the browser before us in line.
                Some(joined) => Ok(joined),
                None => open
                    .await
                    .map(|(header, source)| self.start(key.clone(), header, source)),
            }
        };
        let mut opening = crate::lock(&self.opening);
        // Nobody else in line (the map's and ours are the only handles): done with this key.
        if opening
            .get(&key)
            .is_some_and(|t| Arc::ptr_eq(t, &turn) && Arc::strong_count(t) == 2)
        {
            opening.remove(&key);
        }
        result
    }

    /// Joins the open stream for `key`, if there is one.
    fn join_open(self: &Arc<Self>, key: &RelayKey) -> Option<Joined> {
        let live = crate::lock(&self.live);
        let up = live.get(key)?;
        self.shared_joins.fetch_add(1, Ordering::Relaxed);
        Some(self.subscribe(up))
    }

    /// A stream just opened: its first browser, and its pump.
    fn start<S: FrameSource>(
        self: &Arc<Self>,
        key: RelayKey,
        header: Map<String, Value>,
        source: S,
    ) -> Joined {
        let (tx, _) = broadcast::channel(BACKLOG);
        let up = Arc::new(Upstreamed {
            header,
            tx,
            recent: Mutex::new(Recent::default()),
        });
        let joined = self.subscribe(&up);
        if key.shareable() {
            crate::lock(&self.live).insert(key.clone(), up.clone());
        }
        self.upstreams.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(pump(self.clone(), key, up, source));
        joined
    }

    /// Subscribes a browser (under the map's lock when the upstream is listed there, so a pump
    /// that is closing either sees it or is already gone from the map).
    fn subscribe(self: &Arc<Self>, up: &Upstreamed) -> Joined {
        let rx = up.tx.subscribe();
        let first = crate::lock(&up.recent).frames().into_iter();
        Joined {
            header: up.header.clone(),
            first,
            rx,
            relays: self.clone(),
        }
    }

    /// Streams open now, for tests.
    pub fn open_now(&self) -> u64 {
        self.upstreams.load(Ordering::Relaxed)
    }
}

/// Takes `up` off the map if it is still the one listed for `key`.
fn forget(live: &mut HashMap<RelayKey, Arc<Upstreamed>>, key: &RelayKey, up: &Arc<Upstreamed>) {
    if live.get(key).is_some_and(|u| Arc::ptr_eq(u, up)) {
        live.remove(key);
    }
}

/// Reads the sensor's frames and hands each to every browser on the upstream, until the
/// stream ends or nobody is left. Last frames (the end, a failure) are sent after the upstream
/// left the map, so a browser joining meanwhile opens a fresh stream instead of one that ends.
async fn pump<S: FrameSource>(
    relays: Arc<Relays>,
    key: RelayKey,
    up: Arc<Upstreamed>,
    mut source: S,
) {
    loop {
        let last = match source.next_frame().await {
            Ok(Some(f)) if f.first() == Some(&KIND_END) => Upstream::Frame(Bytes::from(f)),
            Ok(Some(f)) => {
                let f = Bytes::from(f);
                crate::lock(&up.recent).remember(&f);
                // No receiver left is an error here: checked below, under the map's lock.
                let _ = up.tx.send(Upstream::Frame(f));
                let mut live = crate::lock(&relays.live);
                if up.tx.receiver_count() == 0 {
                    forget(&mut live, &key, &up);
                    break;
                }
                continue;
            }
            Ok(None) => Upstream::Closed,
            Err(e) => Upstream::Failed(Arc::new(e)),
        };
        forget(&mut crate::lock(&relays.live), &key, &up);
        let _ = up.tx.send(last);
        break;
    }
    relays.upstreams.fetch_sub(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use earshot_manager::stream_proto::{encode_frame, AudioFrame, EndFrame, EndReason, Frame};
    use tokio::sync::mpsc;

    /// Frames a test feeds, one at a time.
    struct Script(mpsc::Receiver<Result<Option<Vec<u8>>, ManagerError>>);

    impl FrameSource for Script {
        async fn next_frame(&mut self) -> Result<Option<Vec<u8>>, ManagerError> {
            self.0.recv().await.unwrap_or(Ok(None))
        }
    }

    type Feed = mpsc::Sender<Result<Option<Vec<u8>>, ManagerError>>;

    fn audio(seq: u32) -> Vec<u8> {
        let f = Frame::Audio(AudioFrame {
            seq,
            capture_ts_ns: 1,
            rate: 8000,
            channels: 1,
            samples: vec![0; 160],
        });
        let mut out = Vec::new();
        encode_frame(&f, &mut out).expect("encodes");
        out
    }

    fn status(state: &str) -> Vec<u8> {
        let json = format!(
            r#"{{"event":"status","ts_ns":1,"state":"{state}","codec":null,"party":null}}"#
        );
        let mut out = vec![KIND_EVENT];
        out.extend_from_slice(&(json.len() as u32).to_be_bytes());
        out.extend_from_slice(json.as_bytes());
        out
    }

    fn key(from: &str) -> RelayKey {
        RelayKey {
            sensor: 1,
            callref: "abc".into(),
            options: format!("rate=16000 channels=2 from={from} format=opus"),
        }
    }

    /// Joins `key`, opening a scripted stream if none is open; returns the feed if it opened.
    async fn join(relays: &Arc<Relays>, key: RelayKey) -> (Joined, Option<Feed>) {
        let (feed, rx) = mpsc::channel(1024);
        let opened = Arc::new(Mutex::new(None));
        let slot = opened.clone();
        let joined = relays
            .join(key, async move {
                *slot.lock().unwrap() = Some(feed);
                Ok((Map::new(), Script(rx)))
            })
            .await
            .expect("joins");
        let feed = opened.lock().unwrap().take();
        (joined, feed)
    }

    async fn seq_of(j: &mut Joined) -> u32 {
        match j.next().await {
            Upstream::Frame(f) if f[0] == 1 => u32::from_be_bytes([f[5], f[6], f[7], f[8]]),
            other => panic!("not an audio frame: {other:?}"),
        }
    }

    #[tokio::test]
    async fn browsers_of_one_call_from_now_share_one_sensor_stream() {
        let relays = Arc::new(Relays::default());
        let (mut a, feed) = join(&relays, key("now")).await;
        let feed = feed.expect("the first browser opens the stream");
        feed.send(Ok(Some(status("playing")))).await.unwrap();
        feed.send(Ok(Some(audio(0)))).await.unwrap();
        assert!(matches!(a.next().await, Upstream::Frame(f) if f[0] == KIND_EVENT));
        assert_eq!(seq_of(&mut a).await, 0);
        let (mut b, none) = join(&relays, key("now")).await;
        assert!(none.is_none(), "the second browser joins the open stream");
        assert_eq!(relays.open_now(), 1);
        assert_eq!(relays.shared_joins.load(Ordering::Relaxed), 1);
        // The latecomer first gets the call's status, then the live frames with everyone.
        match b.next().await {
            Upstream::Frame(f) => assert_eq!(&f[..], &status("playing")[..]),
            other => panic!("{other:?}"),
        }
        feed.send(Ok(Some(audio(1)))).await.unwrap();
        assert_eq!(seq_of(&mut a).await, 1);
        assert_eq!(seq_of(&mut b).await, 1);
        // A stream from the call's start is its own.
        let (_c, own) = join(&relays, key("start")).await;
        assert!(own.is_some(), "from=start opens its own stream");
        assert_eq!(relays.open_now(), 2);
        // The end reaches everyone; the next browser opens a fresh stream.
        let mut end = Vec::new();
        let e = Frame::End(EndFrame {
            reason: EndReason::CallEnded,
            detail: None,
        });
        encode_frame(&e, &mut end).unwrap();
        feed.send(Ok(Some(end))).await.unwrap();
        for j in [&mut a, &mut b] {
            assert!(matches!(j.next().await, Upstream::Frame(f) if f[0] == KIND_END));
        }
        let (_d, fresh) = join(&relays, key("now")).await;
        assert!(fresh.is_some(), "an ended stream is not joined");
    }

    #[tokio::test]
    async fn the_stream_closes_when_its_last_browser_leaves_and_a_slow_one_is_dropped() {
        let relays = Arc::new(Relays::default());
        let (a, feed) = join(&relays, key("now")).await;
        let feed = feed.unwrap();
        let (mut slow, _) = join(&relays, key("now")).await;
        drop(a);
        // `slow` reads nothing while the sensor sends more than the backlog.
        for seq in 0..(BACKLOG as u32 + 10) {
            feed.send(Ok(Some(audio(seq)))).await.unwrap();
        }
        tokio::time::timeout(std::time::Duration::from_secs(10), async {
            while feed.capacity() < feed.max_capacity() {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the pump reads on without waiting for the slow browser");
        assert!(matches!(slow.next().await, Upstream::Lagged));
        assert_eq!(relays.lagged.load(Ordering::Relaxed), 1);
        drop(slow);
        // Nobody left: the next frame closes the upstream.
        feed.send(Ok(Some(audio(999)))).await.unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(10), async {
            while relays.open_now() > 0 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the upstream closes");
        assert!(feed.is_closed(), "the pump dropped the sensor stream");
        let (_b, fresh) = join(&relays, key("now")).await;
        assert!(fresh.is_some());
    }

    /// Fifty browsers asking for one call at the same moment, while its stream takes a while
    /// to open: one stream is opened, and everyone is on it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn browsers_asking_at_once_open_one_stream() {
        let relays = Arc::new(Relays::default());
        let opens = Arc::new(AtomicU64::new(0));
        let feeds = Arc::new(Mutex::new(Vec::new()));
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let (relays, opens, feeds) = (relays.clone(), opens.clone(), feeds.clone());
                tokio::spawn(async move {
                    relays
                        .join(key("now"), async move {
                            opens.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                            let (feed, rx) = mpsc::channel(16);
                            feeds.lock().unwrap().push(feed);
                            Ok((Map::new(), Script(rx)))
                        })
                        .await
                        .expect("joins")
                })
            })
            .collect();
        let mut joined = Vec::new();
        for t in tasks {
            joined.push(t.await.expect("task"));
        }
        assert_eq!(opens.load(Ordering::Relaxed), 1, "one stream opened");
        assert_eq!(relays.shared_joins.load(Ordering::Relaxed), 49);
        assert!(
            crate::lock(&relays.opening).is_empty(),
            "no lock left behind"
        );
        let feed = feeds.lock().unwrap().pop().expect("a feed");
        feed.send(Ok(Some(audio(5)))).await.unwrap();
        for j in &mut joined {
            assert_eq!(seq_of(j).await, 5);
        }
    }

    #[tokio::test]
    async fn a_failed_sensor_stream_reaches_every_browser() {
        let relays = Arc::new(Relays::default());
        let (mut a, feed) = join(&relays, key("now")).await;
        let (mut b, _) = join(&relays, key("now")).await;
        feed.unwrap()
            .send(Err(ManagerError::Protocol("gone".into())))
            .await
            .unwrap();
        for j in [&mut a, &mut b] {
            assert!(matches!(j.next().await, Upstream::Failed(_)));
        }
    }
}
