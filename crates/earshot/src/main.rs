//! The `earshot` command line: a thin layer over the library crates.

mod analyze;
mod client;
mod demo;
mod demo_traffic;
mod extract;
mod player;
mod report;
mod sensor;
mod synth;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Listen to VoIP calls while they happen, from passively captured SIP and RTP.
#[derive(Parser)]
#[command(name = "earshot", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Demo(demo::Args),
    Analyze(analyze::Args),
    Calls(client::CallsArgs),
    Listen(client::ListenArgs),
    Extract(extract::Args),
    Sensor(sensor::Args),
    Player(player::PlayerArgs),
    Sensors(player::SensorsArgs),
    Users(player::UsersArgs),
    Audit(player::AuditArgs),
    Synth(synth::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Analyze(args) => analyze::run(args),
        Command::Calls(args) => client::calls(args),
        Command::Listen(args) => client::listen(args),
        Command::Extract(args) => extract::run(args),
        Command::Sensor(args) => sensor::run(args),
        Command::Player(args) => player::player(args),
        Command::Sensors(args) => player::sensors(args),
        Command::Users(args) => player::users(args),
        Command::Audit(args) => player::audit(args),
        Command::Synth(args) => synth::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("earshot: {e:#}");
            ExitCode::FAILURE
        }
    }
}
