//! The `earshot` command line: a thin layer over the library crates.

mod analyze;
mod check_config;
mod client;
mod codec_spec;
mod correlate;
mod demo;
mod demo_traffic;
mod embed_example;
mod extract;
mod ladder;
mod ops;
mod player;
mod report;
mod sensor;
mod signals;
mod synth;
mod tls_keylog;

use clap::{CommandFactory, Parser, Subcommand};
use std::process::ExitCode;

/// Listen to VoIP calls while they happen, from passively captured SIP and RTP.
#[derive(Parser)]
#[command(name = "earshot", version = ops::VERSION, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log format on stderr: auto (human, coloured on a terminal), human, or json.
    #[arg(long, global = true, value_enum, default_value_t)]
    log_format: ops::LogFormat,
    /// Log filter: error, warn, info, debug, trace, or e.g. earshot_sensor=debug,info
    /// (default: RUST_LOG, else info).
    #[arg(long, global = true, value_name = "FILTER")]
    log_level: Option<String>,
}

// Parsed once at start-up and matched once: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    Demo(demo::Args),
    Analyze(analyze::Args),
    Ladder(ladder::Args),
    Calls(client::CallsArgs),
    Listen(client::ListenArgs),
    Extract(extract::Args),
    Sensor(sensor::Args),
    Player(player::PlayerArgs),
    Sensors(player::SensorsArgs),
    Users(player::UsersArgs),
    Keys(player::KeysArgs),
    Audit(player::AuditArgs),
    Synth(synth::Args),
    CheckConfig(check_config::Args),
    Completions(ops::CompletionsArgs),
    Man(ops::ManArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = ops::init_logging(cli.log_format, cli.log_level.as_deref()) {
        eprintln!("earshot: {e:#}");
        return ExitCode::FAILURE;
    }
    // Commands whose product is their standard output end quietly when the reader of that
    // output goes away (`earshot analyze big.pcap | head`), as Unix filters do.
    let quiet_on_closed_stdout = matches!(
        cli.command,
        Command::Analyze(_)
            | Command::Ladder(_)
            | Command::Calls(_)
            | Command::Audit(_)
            | Command::Synth(_)
            | Command::Completions(_)
            | Command::Man(_)
    );
    let result = match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Analyze(args) => analyze::run(args),
        Command::Ladder(args) => ladder::run(args),
        Command::Calls(args) => client::calls(args),
        Command::Listen(args) => client::listen(args),
        Command::Extract(args) => extract::run(args),
        Command::Sensor(args) => sensor::run(args),
        Command::Player(args) => player::player(args),
        Command::Sensors(args) => player::sensors(args),
        Command::Users(args) => player::users(args),
        Command::Keys(args) => player::keys(args),
        Command::Audit(args) => player::audit(args),
        Command::Synth(args) => synth::run(args),
        Command::CheckConfig(args) => check_config::run(args),
        Command::Completions(args) => ops::completions(args, Cli::command()),
        Command::Man(args) => ops::man(args, Cli::command()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if quiet_on_closed_stdout && is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("earshot: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
