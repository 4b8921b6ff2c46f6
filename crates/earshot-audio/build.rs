//! Compiles the bundled libspeex 1.2.1 decoder sources (Xiph.org, BSD-3-Clause,
//! see speex/COPYING) with the system C compiler. The FFI declarations are
//! written by hand in src/speex.rs, so neither bindgen nor libclang is needed.
//!
//! Why not the system's libspeex, as libopus is: Debian's libspeex1 (1.2.1) is built with
//! its notifications on, so it writes `notification: … The stream is corrupted.` to stderr
//! for every corrupted frame it is given (tried: three frames of 0xff bytes, three lines). A
//! sensor decodes whatever the network carries, so one hostile stream would flood its log at
//! packet rate; `speex_notify` is a static inline inside the library and cannot be overridden
//! from outside. Built here with DISABLE_NOTIFICATIONS, errors come back as return codes only.

fn main() {
    link_opencore_amr();
    if std::env::var_os("CARGO_FEATURE_LIBAVCODEC").is_some() {
        link_libavcodec();
    }
    build_speex();
}

/// G.723.1 and iLBC decode through the system's libavcodec (FFmpeg 5.1 in Debian 12: libavcodec
/// 59, libavutil 57), only with the cargo feature `libavcodec`. The FFI in src/lavc.rs reads
/// the leading fields of AVPacket and AVFrame, which are stable within a major version, so an
/// other major version is refused here rather than misread at run time.
fn link_libavcodec() {
    for (lib, range) in [("libavcodec", "59"), ("libavutil", "57")] {
        let next = format!("{}", range.parse::<u32>().unwrap_or(0) + 1);
        if let Err(e) = pkg_config::Config::new()
            .range_version(range..next.as_str())
            .probe(lib)
        {
            panic!(
                "{lib} {range}.x not found by pkg-config ({e}): the cargo feature `libavcodec` \
                 needs FFmpeg 5.1's libraries (Debian: apt-get install libavcodec-dev, which \
                 `bash scripts/setup` does)"
            );
        }
    }
}

/// AMR and AMR-WB decode through the system's OpenCORE AMR (Apache-2.0), as libopus does:
/// Debian `libopencore-amrnb-dev` and `libopencore-amrwb-dev` (scripts/setup installs them).
///
/// The demo's AMR-WB call is encoded with VisualOn's AMR-WB encoder (Apache-2.0): Debian
/// `libvo-amrwbenc-dev`, likewise.
fn link_opencore_amr() {
    for lib in ["opencore-amrnb", "opencore-amrwb", "vo-amrwbenc"] {
        if let Err(e) = pkg_config::probe_library(lib) {
            panic!(
                "{lib} not found by pkg-config ({e}): install it with `bash scripts/setup` \
                 (Debian: apt-get install libopencore-amrnb-dev libopencore-amrwb-dev \
                 libvo-amrwbenc-dev)"
            );
        }
    }
}

fn build_speex() {
    const SOURCES: &[&str] = &[
        "bits.c",
        "cb_search.c",
        "exc_5_64_table.c",
        "exc_5_256_table.c",
        "exc_8_128_table.c",
        "exc_10_16_table.c",
        "exc_10_32_table.c",
        "exc_20_32_table.c",
        "filters.c",
        "gain_table.c",
        "gain_table_lbr.c",
        "hexc_10_32_table.c",
        "hexc_table.c",
        "high_lsp_tables.c",
        "lpc.c",
        "lsp.c",
        "lsp_tables_nb.c",
        "ltp.c",
        "modes.c",
        "modes_wb.c",
        "nb_celp.c",
        "quant_lsp.c",
        "sb_celp.c",
        "speex.c",
        "speex_callbacks.c",
        "stereo.c",
        "vbr.c",
        "vq.c",
        "window.c",
    ];
    let mut build = cc::Build::new();
    build
        .include("speex/include")
        .include("speex/libspeex")
        .define("FLOATING_POINT", None)
        .define("EXPORT", Some(""))
        // libspeex would print "notification: … corrupted" on stderr for
        // every bad packet; a capture tool must stay quiet (errors are returned).
        .define("DISABLE_NOTIFICATIONS", None)
        .define("DISABLE_WARNINGS", None)
        .opt_level(2)
        .warnings(false);
    for file in SOURCES {
        let path = format!("speex/libspeex/{file}");
        println!("cargo:rerun-if-changed={path}");
        build.file(path);
    }
    println!("cargo:rerun-if-changed=build.rs");
    build.compile("earshot_speex");
}
