//! Operations plumbing of the command line: logging, the version string, shell completions and
//! man pages (both generated from the clap definition, so they never drift from it).

use anyhow::{Context, Result};
use std::io::IsTerminal;
use std::path::PathBuf;

/// `0.1.0 (git 1a2b3c4)`, `0.1.0 (git 1a2b3c4-dirty)`, or `0.1.0 (git unknown)` when built
/// outside a git checkout (a source tarball).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (git ",
    env!("EARSHOT_GIT_REVISION"),
    ")"
);

#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines, coloured when stderr is a terminal.
    #[default]
    Auto,
    /// Human-readable lines, never coloured.
    Human,
    /// One JSON object per line (for journald, Loki, Elasticsearch...).
    Json,
}

/// Logs go to stderr. The level comes from `--log-level`, else `RUST_LOG`, else `info`; both take
/// tracing's filter syntax (`debug`, `earshot_sensor=debug,info`...).
pub fn init_logging(format: LogFormat, level: Option<&str>) -> Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter = match level {
        Some(l) => EnvFilter::try_new(l)
            .with_context(|| format!("--log-level {l}: expected e.g. info, debug or a filter"))?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second initialisation (tests calling twice) is harmless: the first one stays.
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Human => builder.with_ansi(false).try_init(),
        LogFormat::Auto => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
    Ok(())
}

/// Print a shell completion script on stdout.
///
/// Examples:
///   earshot completions bash > /etc/bash_completion.d/earshot
///   earshot completions zsh > "${fpath[1]}/_earshot"
///   earshot completions fish > ~/.config/fish/completions/earshot.fish
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct CompletionsArgs {
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

pub fn completions(args: CompletionsArgs, mut cmd: clap::Command) -> Result<()> {
    let name = cmd.get_name().to_string();
    clap_complete::generate(args.shell, &mut cmd, name, &mut std::io::stdout());
    Ok(())
}

/// Write man pages: earshot.1 and one page per subcommand (earshot-sensor.1...).
///
/// Examples:
///   earshot man --out /usr/local/share/man/man1
///   earshot man --out target/man && man -l target/man/earshot-sensor.1
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct ManArgs {
    /// Directory to write the pages to (created if missing).
    #[arg(long, value_name = "DIR", default_value = ".")]
    out: PathBuf,
}

pub fn man(args: ManArgs, cmd: clap::Command) -> Result<()> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    clap_mangen::generate_to(cmd, &args.out)
        .with_context(|| format!("cannot write the man pages to {}", args.out.display()))?;
    println!("man pages written to {}", args.out.display());
    Ok(())
}
