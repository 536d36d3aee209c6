//! The `reclaim` binary: parses arguments, sets up logging, runs the command, and maps the
//! outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;
use reclaim::cli::{self, Args, Command, LogFormat};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(&args);
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        // `reclaim list | head`: the reader has all it wanted. Only a pipe closed on
        // standard output counts; one to the admin API is a failure like any other.
        Err(error) if cli::stdout::closed(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("reclaim: {error:#}");
            ExitCode::from(cli::exit_code(&error))
        }
    }
}

fn init_logging(args: &Args) {
    // The gateway logs at info; review commands only say something when it matters.
    let default = if matches!(args.command, Command::Serve) {
        "info"
    } else {
        "warn"
    };
    let filter = EnvFilter::try_from_env("RECLAIM_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    // Colour codes only for a person at a terminal: journald, `docker logs` and log files
    // get plain text (and NO_COLOR turns colour off everywhere).
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
