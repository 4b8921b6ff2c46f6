//! Live capture from network interfaces through libpcap, one thread per interface.
//!
//! ## Why libpcap is opened at run time
//!
//! libpcap is loaded with `dlopen` (the `libloading` crate) instead of being linked: linking
//! would make every `cargo build` need libpcap-dev (headers and the unversioned `libpcap.so`),
//! even on machines that only ever analyse files, and would make the `earshot` binary refuse to
//! start where libpcap is absent. Loaded at run time, only `--interface` needs it, and only the
//! runtime package (`libpcap0.8` on Debian/Ubuntu, `libpcap` on Fedora/RHEL); when it is
//! missing the error says what to install. The price is that the ~15 C declarations below are
//! ours to keep right; they follow `pcap/pcap.h` and `pcap/bpf.h`, whose ABI has been stable
//! since libpcap 1.0 (2008).
//!
//! ## Which kernel ring, and why not immediate mode
//!
//! On Linux libpcap captures through a PF_PACKET socket with a memory-mapped ring, in one of two
//! formats, and which one it picks depends on immediate mode (measured with libpcap 1.10.3 by
//! intercepting its `setsockopt` calls, `PACKET_VERSION` and `PACKET_RX_RING`, with a 64 MiB
//! buffer; tcpdump behaves the same, as `strace -e setsockopt tcpdump …` shows):
//!
//! | immediate mode | snaplen | ring |
//! |---|---|---|
//! | on  | 65,535 | TPACKET_V2: 1,023 fixed slots of 65,616 bytes: a burst of 1,023 packets fills it |
//! | on  | 1,600  | TPACKET_V2: 39,946 slots of 1,680 bytes |
//! | off | any    | TPACKET_V3: 256 blocks of 256 KiB, packets packed end to end (~860 G.711 RTP frames of 214 bytes a block with their 90-byte headers, ~220,000 in all) |
//!
//! libpcap refuses TPACKET_V3 in immediate mode because V3 hands a block to user space only
//! when it is full or when the block's retire timer (`tp_retire_blk_tov`, which libpcap sets
//! from `pcap_set_timeout`) expires. So the capture runs without immediate mode, with
//! [`RING_TIMEOUT`] as that timer: a packet waits at most that long in a partly filled block
//! (20 ms, against the 40–400 ms the listeners' playout holds), and a full ring holds hundreds of
//! thousands of VoIP packets instead of a thousand. The snaplen default ([`LiveConfig::DEFAULT_SNAPLEN`],
//! 1,600 bytes) keeps a whole Ethernet frame with VLAN tags and a tunnel header; in V3 it
//! no longer sizes the ring, but it bounds the bytes copied per packet.
//!
//! ## What a capture thread does
//!
//! Nothing but move frames: the handle is put in non-blocking mode and the thread takes packets
//! with `pcap_next_ex` while there are any, copying each into a [`Batcher`]'s batch (allocated
//! per batch of up to 256 frames, never per packet: the sources' one batching policy, in
//! source.rs); when there are none it sends the partial batch at once (so the tail of
//! a burst is never held back) and waits in `poll(2)` on the capture descriptor, which becomes
//! readable when the kernel retires a block, for at most [`READ_TIMEOUT`], so a stop request is
//! seen within that time. We cannot rely on libpcap's own read timeout for this: libpcap 1.10
//! on Linux, in immediate mode, keeps polling inside `pcap_next_ex` when it expires instead of
//! returning. Frames go to the pipeline in batches through [`FrameSender::offer`], which never
//! blocks (a full queue is counted as internal drops).
//! Once a second it reads `pcap_stats` and adds what the kernel and the interface dropped to
//! [`SensorCounters::kernel_drops`], so that loss stays apart from our own, and a [`DropLog`]
//! decides whether to warn: at most once per [`DROP_LOG_INTERVAL`], with the counts since the
//! last warning.
//!
//! All `unsafe` code of the live source lives in the [`ffi`] module.

use crate::counters::SensorCounters;
use crate::source::{Batcher, FrameSender, Offer, StopFlag};
use earshot_wire::{LinkType, Timestamp};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Longest wait for a packet: bounds how late a stop request is seen.
pub const READ_TIMEOUT: Duration = Duration::from_millis(100);
/// The kernel's block retire timer (TPACKET_V3): the longest a packet waits in a partly filled
/// ring block before the capture thread can see it.
pub const RING_TIMEOUT: Duration = Duration::from_millis(20);
/// At most one drop warning per interface this often.
pub const DROP_LOG_INTERVAL: Duration = Duration::from_secs(10);
const STATS_INTERVAL: Duration = Duration::from_secs(1);

/// How to capture on one interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveConfig {
    /// Interface name as `ip link` shows it (`eth0`, `lo`, or `any` for all of them).
    pub interface: String,
    /// BPF filter in tcpdump syntax; `None` captures everything.
    pub filter: Option<String>,
    /// Bytes kept of each packet. The default fits VoIP over UDP; SIP over TCP (whose segments
    /// are reassembled) and jumbo frames need more: up to 9,216 for jumbo frames, 65,535 to keep
    /// anything whole.
    pub snaplen: u32,
    /// Kernel ring buffer size in bytes: what absorbs bursts while the thread is busy.
    pub buffer_bytes: u32,
    pub promiscuous: bool,
}

impl LiveConfig {
    pub const DEFAULT_SNAPLEN: u32 = 1_600;
    pub const DEFAULT_BUFFER_MB: u32 = 64;

    pub fn new(interface: impl Into<String>) -> Self {
        LiveConfig {
            interface: interface.into(),
            filter: None,
            snaplen: Self::DEFAULT_SNAPLEN,
            buffer_bytes: Self::DEFAULT_BUFFER_MB << 20,
            promiscuous: true,
        }
    }
}

/// Why a capture could not start or stopped.
#[derive(Clone, Debug, thiserror::Error)]
pub enum LiveError {
    #[error(
        "cannot load libpcap ({tried}): {cause}; live capture needs the libpcap runtime: \
         `apt-get install libpcap0.8` (Debian/Ubuntu) or `dnf install libpcap` (Fedora/RHEL)"
    )]
    NoLibrary { tried: String, cause: String },
    #[error("the libpcap found lacks {symbol} ({cause}); libpcap 1.5 or later is needed")]
    MissingSymbol { symbol: String, cause: String },
    #[error(
        "cannot capture on {interface}: permission denied ({message}); capture needs \
         CAP_NET_RAW: run as root or `setcap cap_net_raw+ep $(which earshot)`"
    )]
    Permission { interface: String, message: String },
    #[error("cannot capture on {interface}: no such interface ({message}); `ip link` lists them")]
    NoSuchInterface { interface: String, message: String },
    #[error("cannot capture on {interface}: the interface is down ({message})")]
    InterfaceDown { interface: String, message: String },
    #[error("bad capture filter {filter:?} on {interface}: {message}")]
    Filter {
        interface: String,
        filter: String,
        message: String,
    },
    #[error("capture on {interface}: {what}: {message}")]
    Pcap {
        interface: String,
        what: &'static str,
        message: String,
    },
}

/// An activated capture handle, ready to run. Opening does everything that can fail for a
/// configuration reason (library, permission, interface, filter), so the sensor can refuse to
/// start with a clear message instead of failing later in a thread.
pub struct LiveCapture {
    handle: ffi::Handle,
    link: LinkType,
    cfg: LiveConfig,
}

impl std::fmt::Debug for LiveCapture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveCapture")
            .field("interface", &self.cfg.interface)
            .field("link", &self.link)
            .finish()
    }
}

impl LiveCapture {
    /// Opens and activates the interface and installs the filter.
    pub fn open(cfg: &LiveConfig) -> Result<Self, LiveError> {
        let api = ffi::api()?;
        let handle = ffi::Handle::open(api, cfg)?;
        // On Linux, libpcap's DLT_ values equal tcpdump's LINKTYPE_ numbers for every link
        // earshot decodes, except DLT_RAW (12), which the decoder accepts as raw IP too.
        let link = LinkType(u32::try_from(handle.datalink()).unwrap_or(u32::MAX));
        Ok(LiveCapture {
            handle,
            link,
            cfg: cfg.clone(),
        })
    }

    pub fn link_type(&self) -> LinkType {
        self.link
    }

    pub fn interface(&self) -> &str {
        &self.cfg.interface
    }

    /// What the kernel ring turned out to be (read back from the socket, not assumed).
    pub fn ring(&self) -> RingInfo {
        self.handle.ring()
    }

    /// Captures until `stop`, until the pipeline goes away, or until the interface fails (the
    /// error is returned then, e.g. when the interface disappears).
    pub fn run(mut self, out: &FrameSender, stop: &StopFlag) -> Result<(), LiveError> {
        // The sources' one batching policy (source.rs).
        let mut batch = Batcher::default();
        let mut drops = DropTracker::default();
        let started = Instant::now();
        let mut log = DropLog::new(DROP_LOG_INTERVAL);
        let mut last_stats = Instant::now();
        let result = loop {
            if stop.is_stopped() {
                break Ok(());
            }
            let idle = match self.handle.next() {
                Ok(Some((ts, data))) => {
                    batch.push(ts, self.link, data);
                    false
                }
                Ok(None) => true,
                Err(e) => break Err(self.error("reading packets", e)),
            };
            // Nothing more queued in the kernel also flushes, so a pause in traffic never
            // strands frames in a partial batch.
            if let Some(full) = batch.take_due(idle) {
                match out.offer(full) {
                    Offer::Sent => {}
                    Offer::Dropped(n) => drops.queue += n,
                    Offer::Closed => break Ok(()),
                }
            }
            if last_stats.elapsed() >= STATS_INTERVAL {
                last_stats = Instant::now();
                self.report_drops(&mut drops, &mut log, started.elapsed(), out.counters());
            }
            if idle {
                if let Err(e) = self.handle.wait(READ_TIMEOUT) {
                    break Err(self.error("waiting for packets", e));
                }
            }
        };
        if let Some(rest) = batch.take() {
            if let Offer::Dropped(n) = out.offer(rest) {
                drops.queue += n;
            }
        }
        // The last counts are logged whatever the interval: nothing will report them later.
        let mut last = DropLog::new(Duration::ZERO);
        self.report_drops(&mut drops, &mut last, started.elapsed(), out.counters());
        result
    }

    /// Runs the capture on its own thread; errors are logged there.
    pub fn spawn(self, out: FrameSender, stop: StopFlag) -> std::io::Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name(format!("earshot-live-{}", self.cfg.interface))
            .spawn(move || {
                let interface = self.cfg.interface.clone();
                match self.run(&out, &stop) {
                    Ok(()) => tracing::info!(%interface, "live capture stopped"),
                    Err(e) => tracing::error!("{e}"),
                }
            })
    }

    /// Reads libpcap's counters, counts the new drops and logs them when `log` says so.
    fn report_drops(
        &mut self,
        drops: &mut DropTracker,
        log: &mut DropLog,
        now: Duration,
        counters: &SensorCounters,
    ) {
        let mut new = Drops {
            queue: std::mem::take(&mut drops.queue),
            ..Drops::default()
        };
        match self.handle.stats() {
            Ok(s) => {
                let (kernel, interface) = drops.delta(s);
                new.kernel = kernel;
                new.interface = interface;
                SensorCounters::add(&counters.kernel_drops, kernel + interface);
            }
            Err(e) => tracing::debug!(interface = %self.cfg.interface, "pcap_stats: {e}"),
        }
        if let Some(message) = log.observe(now, new) {
            tracing::warn!(interface = %self.cfg.interface, "{message}");
        }
    }

    fn error(&self, what: &'static str, message: String) -> LiveError {
        LiveError::Pcap {
            interface: self.cfg.interface.clone(),
            what,
            message,
        }
    }
}

/// Opens every interface first, so that one bad interface stops the sensor before any thread
/// starts; then starts one capture thread per interface.
pub fn spawn_all(
    cfgs: &[LiveConfig],
    out: &FrameSender,
    stop: &StopFlag,
) -> Result<Vec<JoinHandle<()>>, LiveError> {
    let mut opened = Vec::with_capacity(cfgs.len());
    for cfg in cfgs {
        opened.push(LiveCapture::open(cfg)?);
    }
    let mut threads = Vec::with_capacity(opened.len());
    for cap in opened {
        let interface = cap.cfg.interface.clone();
        let ring = cap.ring();
        tracing::info!(%interface, filter = ?cap.cfg.filter, "live capture started: {ring}");
        if ring.tpacket_version != 3 {
            tracing::warn!(
                %interface,
                "libpcap chose TPACKET_V{} rather than V3: the ring holds fewer packets and \
                 bursts may be dropped; libpcap 1.5 or later on Linux 3.2 or later gives V3",
                ring.tpacket_version
            );
        }
        let thread = cap
            .spawn(out.clone(), stop.clone())
            .map_err(|e| LiveError::Pcap {
                interface,
                what: "starting the capture thread",
                message: e.to_string(),
            })?;
        threads.push(thread);
    }
    Ok(threads)
}

/// Turns libpcap's cumulative per-handle counters into increments of the sensor-wide total,
/// and gathers this thread's queue drops between two reports.
/// libpcap's counters are 32-bit and wrap on long captures; wrapping subtraction keeps the
/// increments right across a wrap.
#[derive(Default, Debug)]
struct DropTracker {
    drop: u32,
    ifdrop: u32,
    /// Frames this thread could not queue since the last report.
    queue: u64,
}

impl DropTracker {
    /// New (kernel, interface) drops since the last call.
    fn delta(&mut self, s: ffi::Stats) -> (u64, u64) {
        let d = (
            u64::from(s.drop.wrapping_sub(self.drop)),
            u64::from(s.ifdrop.wrapping_sub(self.ifdrop)),
        );
        self.drop = s.drop;
        self.ifdrop = s.ifdrop;
        d
    }
}

/// Frames lost, by where they were lost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drops {
    /// The kernel ring was full (`ps_drop`): the capture thread fell behind.
    pub kernel: u64,
    /// The interface dropped them before the kernel's capture saw them (`ps_ifdrop`).
    pub interface: u64,
    /// Earshot's queue to the pipeline was full: the pipeline fell behind.
    pub queue: u64,
}

impl Drops {
    fn total(&self) -> u64 {
        self.kernel + self.interface + self.queue
    }

    fn add(&mut self, o: Drops) {
        self.kernel += o.kernel;
        self.interface += o.interface;
        self.queue += o.queue;
    }
}

/// Decides when to warn about drops, as a pure function of time and counts so it can be tested:
/// the first drop is reported at once, later ones at most once per interval, each warning with
/// the counts since the previous one and the totals since the start. Nothing is logged while
/// nothing is lost.
#[derive(Debug)]
pub struct DropLog {
    interval: Duration,
    /// When the last warning was given (time since the capture started).
    last: Option<Duration>,
    pending: Drops,
    total: Drops,
}

impl DropLog {
    pub fn new(interval: Duration) -> Self {
        DropLog {
            interval,
            last: None,
            pending: Drops::default(),
            total: Drops::default(),
        }
    }

    /// Adds the drops seen at `now` (any monotonic time) and returns the warning to log, if one
    /// is due.
    pub fn observe(&mut self, now: Duration, new: Drops) -> Option<String> {
        self.pending.add(new);
        self.total.add(new);
        if self.pending.total() == 0 {
            return None;
        }
        let since = match self.last {
            Some(last) if now.saturating_sub(last) < self.interval => return None,
            Some(last) => format!("in the last {} s", now.saturating_sub(last).as_secs()),
            None => "since the capture started".to_string(),
        };
        self.last = Some(now);
        let p = std::mem::take(&mut self.pending);
        Some(format!(
            "capture lost {} packets {since}: {} dropped by the kernel (the ring was full: \
             raise --capture-buffer-mb, or lower --snaplen), {} by the interface, {} by \
             earshot's queue (the pipeline is behind: fewer calls or more CPU); totals: \
             kernel {}, interface {}, queue {}",
            p.total(),
            p.kernel,
            p.interface,
            p.queue,
            self.total.kernel,
            self.total.interface,
            self.total.queue
        ))
    }
}

/// The capture ring as the kernel has it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingInfo {
    /// 1, 2 or 3 (TPACKET_V1..V3); 0 when it could not be read.
    pub tpacket_version: u32,
    /// Bytes kept of each packet, as libpcap has it (`pcap_snapshot`).
    pub snaplen: u32,
    /// Size of the memory-mapped ring; 0 when it could not be read.
    pub ring_bytes: u64,
}

impl std::fmt::Display for RingInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ring=TPACKET_V{} ring_bytes={} snaplen={}",
            self.tpacket_version, self.ring_bytes, self.snaplen
        )
    }
}

/// The size of the mappings of socket `inode` in a `/proc/PID/maps` text: the capture ring.
fn mapped_bytes(maps: &str, inode: u64) -> u64 {
    let name = format!("socket:[{inode}]");
    maps.lines()
        .filter(|l| l.split_whitespace().last() == Some(name.as_str()))
        .filter_map(|l| {
            let range = l.split_whitespace().next()?;
            let (a, b) = range.split_once('-')?;
            let a = u64::from_str_radix(a, 16).ok()?;
            let b = u64::from_str_radix(b, 16).ok()?;
            b.checked_sub(a)
        })
        .sum()
}

/// The FFI wrapper: the only place with `unsafe` code for live capture.
mod ffi {
    use super::{LiveConfig, LiveError, Timestamp};
    use std::ffi::{c_char, c_int, c_long, c_uchar, c_uint, c_void, CStr, CString};
    use std::ptr::NonNull;
    use std::sync::OnceLock;
    use std::time::Duration;

    /// Sonames tried in order: upstream's, Debian's historical one, then the development link.
    const SONAMES: [&str; 3] = ["libpcap.so.1", "libpcap.so.0.8", "libpcap.so"];
    const ERRBUF_SIZE: usize = 256; // PCAP_ERRBUF_SIZE
    const PCAP_NETMASK_UNKNOWN: u32 = 0xffff_ffff;
    const PCAP_TSTAMP_PRECISION_NANO: c_int = 1;
    // linux/if_packet.h: the option that reads the ring format back (0 = TPACKET_V1).
    const SOL_PACKET: c_int = 263;
    const PACKET_VERSION: c_int = 10;

    // pcap_activate() results (pcap/pcap.h).
    const PCAP_ERROR_NO_SUCH_DEVICE: c_int = -5;
    const PCAP_ERROR_PERM_DENIED: c_int = -8;
    const PCAP_ERROR_IFACE_NOT_UP: c_int = -9;
    const PCAP_ERROR_PROMISC_PERM_DENIED: c_int = -11;

    /// `pcap_t` is opaque.
    #[repr(C)]
    pub struct PcapT {
        _private: [u8; 0],
    }

    /// `struct timeval` as glibc and musl define it on Linux: two `long`s. That is 16 bytes on
    /// the 64-bit targets (x86_64, aarch64) and 8 on classic 32-bit ones, matching the libpcap
    /// those distributions ship. (32-bit builds with a 64-bit `time_t` would differ; earshot is
    /// not built for them.)
    #[repr(C)]
    struct Timeval {
        tv_sec: c_long,
        tv_usec: c_long,
    }

    /// `struct pcap_pkthdr`: 24 bytes on x86_64/aarch64 Linux (16 for the timeval, then two
    /// 32-bit lengths, no padding).
    #[repr(C)]
    struct PktHdr {
        ts: Timeval,
        caplen: u32,
        len: u32,
    }

    /// `struct bpf_program`.
    #[repr(C)]
    struct BpfProgram {
        bf_len: c_uint,
        bf_insns: *mut c_void,
    }

    /// `struct pcap_stat` on non-Windows systems: three `u_int`s.
    #[repr(C)]
    #[derive(Default)]
    struct PcapStat {
        _ps_recv: c_uint,
        ps_drop: c_uint,
        ps_ifdrop: c_uint,
    }

    #[derive(Copy, Clone, Debug, Default)]
    pub struct Stats {
        pub drop: u32,
        pub ifdrop: u32,
    }

    type CreateFn = unsafe extern "C" fn(*const c_char, *mut c_char) -> *mut PcapT;
    type SetIntFn = unsafe extern "C" fn(*mut PcapT, c_int) -> c_int;
    type HandleFn = unsafe extern "C" fn(*mut PcapT) -> c_int;
    type CompileFn =
        unsafe extern "C" fn(*mut PcapT, *mut BpfProgram, *const c_char, c_int, u32) -> c_int;
    type SetFilterFn = unsafe extern "C" fn(*mut PcapT, *mut BpfProgram) -> c_int;
    type FreeCodeFn = unsafe extern "C" fn(*mut BpfProgram);
    type NextExFn =
        unsafe extern "C" fn(*mut PcapT, *mut *mut PktHdr, *mut *const c_uchar) -> c_int;
    type StatsFn = unsafe extern "C" fn(*mut PcapT, *mut PcapStat) -> c_int;
    type GetErrFn = unsafe extern "C" fn(*mut PcapT) -> *mut c_char;
    type CloseFn = unsafe extern "C" fn(*mut PcapT);
    type StatusToStrFn = unsafe extern "C" fn(c_int) -> *const c_char;
    type SetNonBlockFn = unsafe extern "C" fn(*mut PcapT, c_int, *mut c_char) -> c_int;

    /// The functions used, resolved once per process. The library is kept in the same static
    /// and never unloaded, which is what keeps these pointers valid.
    pub struct Api {
        create: CreateFn,
        set_snaplen: SetIntFn,
        set_promisc: SetIntFn,
        set_buffer_size: SetIntFn,
        set_timeout: SetIntFn,
        /// Optional: without it timestamps stay in microseconds.
        set_tstamp_precision: Option<SetIntFn>,
        activate: HandleFn,
        datalink: HandleFn,
        snapshot: HandleFn,
        compile: CompileFn,
        setfilter: SetFilterFn,
        freecode: FreeCodeFn,
        next_ex: NextExFn,
        stats: StatsFn,
        geterr: GetErrFn,
        close: CloseFn,
        statustostr: StatusToStrFn,
        setnonblock: SetNonBlockFn,
        get_selectable_fd: HandleFn,
        _lib: libloading::Library,
    }

    static API: OnceLock<Result<Api, LiveError>> = OnceLock::new();

    /// Loads libpcap on first use. A failure is remembered too: the answer will not change
    /// while the process runs.
    pub fn api() -> Result<&'static Api, LiveError> {
        API.get_or_init(load).as_ref().map_err(Clone::clone)
    }

    fn load() -> Result<Api, LiveError> {
        let mut last_err = String::new();
        let mut lib = None;
        for name in SONAMES {
            // SAFETY: loading runs libpcap's initialisers, which only set up its own globals;
            // it is loaded by soname from the system's library path, like a linked dependency.
            match unsafe { libloading::Library::new(name) } {
                Ok(l) => {
                    lib = Some(l);
                    break;
                }
                Err(e) => last_err = e.to_string(),
            }
        }
        let Some(lib) = lib else {
            return Err(LiveError::NoLibrary {
                tried: SONAMES.join(", "),
                cause: last_err,
            });
        };
        /// Resolves one symbol as a plain function pointer.
        fn sym<T: Copy>(lib: &libloading::Library, name: &str) -> Result<T, LiveError> {
            // SAFETY: each call site names a pcap.h function and the Rust type declared for
            // it above, which matches its C prototype.
            match unsafe { lib.get::<T>(name.as_bytes()) } {
                Ok(s) => Ok(*s),
                Err(e) => Err(LiveError::MissingSymbol {
                    symbol: name.to_string(),
                    cause: e.to_string(),
                }),
            }
        }
        Ok(Api {
            create: sym(&lib, "pcap_create")?,
            set_snaplen: sym(&lib, "pcap_set_snaplen")?,
            set_promisc: sym(&lib, "pcap_set_promisc")?,
            set_buffer_size: sym(&lib, "pcap_set_buffer_size")?,
            set_timeout: sym(&lib, "pcap_set_timeout")?,
            set_tstamp_precision: sym(&lib, "pcap_set_tstamp_precision").ok(),
            activate: sym(&lib, "pcap_activate")?,
            datalink: sym(&lib, "pcap_datalink")?,
            snapshot: sym(&lib, "pcap_snapshot")?,
            compile: sym(&lib, "pcap_compile")?,
            setfilter: sym(&lib, "pcap_setfilter")?,
            freecode: sym(&lib, "pcap_freecode")?,
            next_ex: sym(&lib, "pcap_next_ex")?,
            stats: sym(&lib, "pcap_stats")?,
            geterr: sym(&lib, "pcap_geterr")?,
            close: sym(&lib, "pcap_close")?,
            statustostr: sym(&lib, "pcap_statustostr")?,
            setnonblock: sym(&lib, "pcap_setnonblock")?,
            get_selectable_fd: sym(&lib, "pcap_get_selectable_fd")?,
            _lib: lib,
        })
    }

    /// An owned `pcap_t`, closed on drop.
    pub struct Handle {
        p: NonNull<PcapT>,
        api: &'static Api,
        nano: bool,
        /// The descriptor to poll(2) for readiness; owned by libpcap.
        fd: c_int,
    }

    // SAFETY: a pcap_t may be used from any thread as long as only one uses it at a time;
    // `Handle` is not `Sync` and all its methods take `&mut self` or `&self` without sharing
    // the pointer, so moving it to the capture thread is sound.
    unsafe impl Send for Handle {}

    fn c_int_of(v: u32) -> c_int {
        c_int::try_from(v).unwrap_or(c_int::MAX)
    }

    impl Handle {
        pub fn open(api: &'static Api, cfg: &LiveConfig) -> Result<Handle, LiveError> {
            let interface = cfg.interface.clone();
            let pcap_err = |what: &'static str, message: String| LiveError::Pcap {
                interface: interface.clone(),
                what,
                message,
            };
            let name = CString::new(cfg.interface.as_str())
                .map_err(|_| pcap_err("bad interface name", "contains a NUL byte".into()))?;
            let mut errbuf = [0 as c_char; ERRBUF_SIZE];
            // SAFETY: `name` is NUL-terminated and `errbuf` has the PCAP_ERRBUF_SIZE bytes
            // pcap_create may write its message into.
            let raw = unsafe { (api.create)(name.as_ptr(), errbuf.as_mut_ptr()) };
            let Some(p) = NonNull::new(raw) else {
                // SAFETY: on failure pcap_create left a NUL-terminated message in `errbuf`;
                // the last byte is forced to NUL in `buf_str` in case it did not.
                return Err(pcap_err("pcap_create", buf_str(&mut errbuf)));
            };
            // From here on, dropping `h` closes the handle on every error path.
            let mut h = Handle {
                p,
                api,
                nano: false,
                fd: -1,
            };
            // Becomes the kernel's block retire timer (TPACKET_V3): how long a packet may wait
            // in a partly filled block. Waiting itself is done by `wait`.
            let ms = c_int::try_from(super::RING_TIMEOUT.as_millis()).unwrap_or(20);
            let settings: [(&'static str, SetIntFn, c_int); 4] = [
                ("pcap_set_snaplen", api.set_snaplen, c_int_of(cfg.snaplen)),
                (
                    "pcap_set_promisc",
                    api.set_promisc,
                    c_int::from(cfg.promiscuous),
                ),
                (
                    "pcap_set_buffer_size",
                    api.set_buffer_size,
                    c_int_of(cfg.buffer_bytes),
                ),
                // No pcap_set_immediate_mode: it makes libpcap fall back to TPACKET_V2, whose
                // fixed slots hold few packets (see the module documentation). The timeout
                // bounds the delay instead.
                ("pcap_set_timeout", api.set_timeout, ms),
            ];
            for (what, f, v) in settings {
                // SAFETY: `h.p` is a live, not yet activated handle, which is what the
                // pcap_set_* functions take.
                if unsafe { f(h.p.as_ptr(), v) } != 0 {
                    return Err(pcap_err(what, h.geterr()));
                }
            }
            if let Some(f) = api.set_tstamp_precision {
                // SAFETY: as above; a refusal only leaves microsecond timestamps.
                h.nano = unsafe { f(h.p.as_ptr(), PCAP_TSTAMP_PRECISION_NANO) } == 0;
            }
            // SAFETY: `h.p` is a live, configured handle.
            let rc = unsafe { (api.activate)(h.p.as_ptr()) };
            if rc < 0 {
                return Err(h.activate_error(rc, cfg));
            }
            if rc > 0 {
                // Warnings (e.g. promiscuous mode not supported) do not stop the capture.
                tracing::warn!(interface = %cfg.interface, "pcap_activate: {}", h.status(rc));
            }
            if let Some(filter) = cfg.filter.as_deref().filter(|f| !f.trim().is_empty()) {
                h.set_filter(filter).map_err(|message| LiveError::Filter {
                    interface: cfg.interface.clone(),
                    filter: filter.to_string(),
                    message,
                })?;
            }
            let mut errbuf = [0 as c_char; ERRBUF_SIZE];
            // SAFETY: `h.p` is an activated handle; `errbuf` has PCAP_ERRBUF_SIZE bytes.
            if unsafe { (api.setnonblock)(h.p.as_ptr(), 1, errbuf.as_mut_ptr()) } != 0 {
                return Err(pcap_err("pcap_setnonblock", buf_str(&mut errbuf)));
            }
            // SAFETY: `h.p` is an activated handle.
            h.fd = unsafe { (api.get_selectable_fd)(h.p.as_ptr()) };
            if h.fd < 0 {
                return Err(pcap_err(
                    "pcap_get_selectable_fd",
                    "no descriptor to wait on".into(),
                ));
            }
            Ok(h)
        }

        fn activate_error(&self, rc: c_int, cfg: &LiveConfig) -> LiveError {
            // pcap_geterr holds details for some failures and stale text for others, so both
            // it and the status text are reported.
            let detail = self.geterr();
            let status = self.status(rc);
            let message = if detail.is_empty() || detail == status {
                status
            } else {
                format!("{status}: {detail}")
            };
            let interface = cfg.interface.clone();
            match rc {
                PCAP_ERROR_PERM_DENIED | PCAP_ERROR_PROMISC_PERM_DENIED => {
                    LiveError::Permission { interface, message }
                }
                PCAP_ERROR_NO_SUCH_DEVICE => LiveError::NoSuchInterface { interface, message },
                PCAP_ERROR_IFACE_NOT_UP => LiveError::InterfaceDown { interface, message },
                // Some kernels report a missing capability as a generic error with EPERM.
                _ if message.contains("Operation not permitted") => {
                    LiveError::Permission { interface, message }
                }
                _ => LiveError::Pcap {
                    interface,
                    what: "pcap_activate",
                    message,
                },
            }
        }

        fn set_filter(&mut self, filter: &str) -> Result<(), String> {
            let expr = CString::new(filter).map_err(|_| "contains a NUL byte".to_string())?;
            let mut prog = BpfProgram {
                bf_len: 0,
                bf_insns: std::ptr::null_mut(),
            };
            // SAFETY: `self.p` is an activated handle, `prog` is a valid out-parameter and
            // `expr` is NUL-terminated. The netmask only matters for `ip broadcast`.
            let rc = unsafe {
                (self.api.compile)(
                    self.p.as_ptr(),
                    &mut prog,
                    expr.as_ptr(),
                    1,
                    PCAP_NETMASK_UNKNOWN,
                )
            };
            if rc != 0 {
                return Err(self.geterr());
            }
            // SAFETY: `prog` was filled by a successful pcap_compile.
            let rc = unsafe { (self.api.setfilter)(self.p.as_ptr(), &mut prog) };
            let result = if rc != 0 { Err(self.geterr()) } else { Ok(()) };
            // SAFETY: pcap_setfilter copies the program, so it is freed exactly once here.
            unsafe { (self.api.freecode)(&mut prog) };
            result
        }

        pub fn datalink(&self) -> c_int {
            // SAFETY: `self.p` is an activated handle.
            unsafe { (self.api.datalink)(self.p.as_ptr()) }
        }

        /// The ring as the kernel has it: the TPACKET version from the socket, the snaplen from
        /// libpcap, the ring's size from this process's memory mappings.
        pub fn ring(&self) -> super::RingInfo {
            // SAFETY: `self.p` is an activated handle.
            let snaplen = unsafe { (self.api.snapshot)(self.p.as_ptr()) };
            let mut version: c_int = -1;
            let mut len = std::mem::size_of::<c_int>() as libc::socklen_t;
            // SAFETY: `self.fd` is libpcap's open socket; `version` and `len` are valid
            // out-parameters of the sizes given.
            let rc = unsafe {
                libc::getsockopt(
                    self.fd,
                    SOL_PACKET,
                    PACKET_VERSION,
                    (&mut version as *mut c_int).cast(),
                    &mut len,
                )
            };
            let tpacket_version = if rc == 0 {
                u32::try_from(version + 1).unwrap_or(0)
            } else {
                0
            };
            super::RingInfo {
                tpacket_version,
                snaplen: u32::try_from(snaplen).unwrap_or(0),
                ring_bytes: self.ring_bytes(),
            }
        }

        /// The ring is mapped from the socket, so /proc/self/maps names it by the socket's
        /// inode, which /proc/self/fd gives.
        fn ring_bytes(&self) -> u64 {
            let Ok(link) = std::fs::read_link(format!("/proc/self/fd/{}", self.fd)) else {
                return 0;
            };
            let inode = link
                .to_str()
                .and_then(|l| l.strip_prefix("socket:["))
                .and_then(|l| l.strip_suffix(']'))
                .and_then(|l| l.parse().ok());
            match (inode, std::fs::read_to_string("/proc/self/maps")) {
                (Some(inode), Ok(maps)) => super::mapped_bytes(&maps, inode),
                _ => 0,
            }
        }

        /// The next packet, `None` on timeout. The bytes are only valid until the next call,
        /// which the borrow of `self` enforces.
        pub fn next(&mut self) -> Result<Option<(Timestamp, &[u8])>, String> {
            let mut hdr: *mut PktHdr = std::ptr::null_mut();
            let mut data: *const c_uchar = std::ptr::null();
            // SAFETY: `self.p` is an activated handle; both out-pointers are valid.
            let rc = unsafe { (self.api.next_ex)(self.p.as_ptr(), &mut hdr, &mut data) };
            match rc {
                1 => {}
                // Non-blocking: nothing is queued right now.
                0 => return Ok(None),
                // -2 only follows pcap_breakloop or the end of a savefile; neither applies,
                // so treat it as "nothing this time".
                -2 => return Ok(None),
                _ => return Err(self.geterr()),
            }
            if hdr.is_null() || data.is_null() {
                return Ok(None);
            }
            // SAFETY: on success pcap_next_ex points `hdr` at a valid header that stays valid
            // until the next call on this handle.
            let hdr = unsafe { &*hdr };
            let caplen = usize::try_from(hdr.caplen).unwrap_or(0);
            // SAFETY: libpcap guarantees `data` points at `caplen` readable bytes, valid until
            // the next call on this handle; the returned slice borrows `self` mutably, so no
            // such call can happen while it lives.
            let bytes = unsafe { std::slice::from_raw_parts(data, caplen) };
            let sub = long(hdr.ts.tv_usec);
            let sub_ns = if self.nano {
                sub
            } else {
                sub.saturating_mul(1_000)
            };
            let ts = long(hdr.ts.tv_sec)
                .saturating_mul(1_000_000_000)
                .saturating_add(sub_ns);
            Ok(Some((Timestamp(ts), bytes)))
        }

        /// Waits until packets may be ready or `timeout` passes. Spurious wake-ups are fine:
        /// the caller just finds nothing to read.
        pub fn wait(&self, timeout: Duration) -> Result<(), String> {
            let mut pfd = libc::pollfd {
                fd: self.fd,
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = c_int::try_from(timeout.as_millis()).unwrap_or(c_int::MAX);
            // SAFETY: `pfd` is one valid pollfd and nfds is 1; the descriptor stays open while
            // the handle lives.
            let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
            if rc < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e.to_string());
                }
            }
            // POLLERR/POLLHUP (e.g. the interface went away) are reported by the next read.
            Ok(())
        }

        pub fn stats(&mut self) -> Result<Stats, String> {
            let mut s = PcapStat::default();
            // SAFETY: `self.p` is an activated handle and `s` a valid out-parameter of the
            // non-Windows `struct pcap_stat` layout.
            let rc = unsafe { (self.api.stats)(self.p.as_ptr(), &mut s) };
            if rc != 0 {
                return Err(self.geterr());
            }
            Ok(Stats {
                drop: s.ps_drop,
                ifdrop: s.ps_ifdrop,
            })
        }

        fn geterr(&self) -> String {
            // SAFETY: pcap_geterr returns a pointer to the handle's own NUL-terminated error
            // buffer, valid while the handle is; it is copied out at once.
            let p = unsafe { (self.api.geterr)(self.p.as_ptr()) };
            if p.is_null() {
                return String::new();
            }
            // SAFETY: see above: non-null and NUL-terminated.
            unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
        }

        fn status(&self, rc: c_int) -> String {
            // SAFETY: pcap_statustostr returns a static string (or a thread-local buffer for
            // unknown codes), NUL-terminated; it is copied out at once.
            let p = unsafe { (self.api.statustostr)(rc) };
            if p.is_null() {
                return format!("error {rc}");
            }
            // SAFETY: see above: non-null and NUL-terminated.
            unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
        }
    }

    impl Drop for Handle {
        fn drop(&mut self) {
            // SAFETY: `self.p` came from pcap_create and is closed exactly once, here.
            unsafe { (self.api.close)(self.p.as_ptr()) };
        }
    }

    /// `long` widened to i64: a no-op on 64-bit targets, a widening on 32-bit ones.
    #[allow(clippy::useless_conversion)]
    fn long(v: c_long) -> i64 {
        i64::from(v)
    }

    /// The message libpcap wrote into an error buffer.
    fn buf_str(buf: &mut [c_char; ERRBUF_SIZE]) -> String {
        buf[ERRBUF_SIZE - 1] = 0;
        // SAFETY: the buffer is NUL-terminated (forced just above).
        unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn layouts_match_linux_lp64() {
            if cfg!(all(target_os = "linux", target_pointer_width = "64")) {
                assert_eq!(std::mem::size_of::<Timeval>(), 16);
                assert_eq!(std::mem::size_of::<PktHdr>(), 24);
                assert_eq!(std::mem::offset_of!(PktHdr, caplen), 16);
                assert_eq!(std::mem::size_of::<BpfProgram>(), 16);
                assert_eq!(std::mem::size_of::<PcapStat>(), 12);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_deltas_accumulate_and_survive_wrap() {
        let mut t = DropTracker::default();
        assert_eq!(t.delta(ffi::Stats { drop: 5, ifdrop: 1 }), (5, 1));
        assert_eq!(t.delta(ffi::Stats { drop: 5, ifdrop: 1 }), (0, 0));
        t.drop = u32::MAX - 1;
        assert_eq!(t.delta(ffi::Stats { drop: 3, ifdrop: 2 }), (5, 1));
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn kernel(n: u64) -> Drops {
        Drops {
            kernel: n,
            ..Drops::default()
        }
    }

    #[test]
    fn drop_log_is_quiet_without_drops() {
        let mut log = DropLog::new(DROP_LOG_INTERVAL);
        for s in 0..100 {
            assert_eq!(log.observe(secs(s), Drops::default()), None);
        }
    }

    #[test]
    fn drop_log_warns_at_once_then_at_most_every_interval_with_counts_since_the_last() {
        let mut log = DropLog::new(secs(10));
        let first = log
            .observe(secs(1), kernel(7))
            .expect("the first drop is logged at once");
        assert!(
            first.contains("lost 7 packets since the capture started"),
            "{first}"
        );
        assert!(first.contains("7 dropped by the kernel"), "{first}");
        assert!(first.contains("--capture-buffer-mb"), "{first}");
        // Drops every second: held back, then summed into one warning 10 s after the first.
        for s in 2..11 {
            let d = Drops {
                kernel: 1,
                interface: 2,
                queue: 3,
            };
            assert_eq!(log.observe(secs(s), d), None, "at {s} s");
        }
        let second = log
            .observe(secs(11), kernel(1))
            .expect("due again after 10 s");
        assert!(
            second.contains("lost 55 packets in the last 10 s"),
            "{second}"
        );
        assert!(second.contains("10 dropped by the kernel"), "{second}");
        assert!(second.contains("18 by the interface"), "{second}");
        assert!(second.contains("27 by earshot's queue"), "{second}");
        assert!(
            second.contains("totals: kernel 17, interface 18, queue 27"),
            "{second}"
        );
        // A quiet spell logs nothing; the next drop after it is logged at once.
        for s in 12..40 {
            assert_eq!(log.observe(secs(s), Drops::default()), None);
        }
        let third = log
            .observe(secs(40), kernel(2))
            .expect("quiet for longer than 10 s");
        assert!(third.contains("lost 2 packets in the last 29 s"), "{third}");
    }

    #[test]
    fn a_huge_count_is_one_line() {
        let mut log = DropLog::new(secs(10));
        let m = log.observe(secs(0), kernel(u64::from(u32::MAX))).unwrap();
        assert_eq!(m.lines().count(), 1);
        assert_eq!(log.observe(secs(1), kernel(u64::from(u32::MAX))), None);
    }

    #[test]
    fn ring_size_is_read_from_the_socket_mapping() {
        let maps = "7fea7e323000-7fea7eb23000 rw-s 00000000 00:09 633714                     socket:[633714]\n\
                    7fea7eb23000-7fea7eb24000 rw-s 00000000 00:09 1                          socket:[1]\n\
                    55d0c0a00000-55d0c0a21000 r--p 00000000 08:01 42                         /usr/bin/earshot\n";
        assert_eq!(mapped_bytes(maps, 633714), 8 << 20);
        assert_eq!(mapped_bytes(maps, 7), 0);
        assert_eq!(mapped_bytes("garbage-zz x socket:[5]\n", 5), 0);
    }
}
