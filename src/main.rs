//! The `rbg-notify` command: parses the command line, runs the library, and
//! reports any error once before exiting with the status of `exit.rs`.

use std::ffi::OsString;
use std::io::{self, Write};
use std::process::ExitCode;

use argh::{EarlyExit, FromArgs};
use rbg_notify::cli::Args;
use rbg_notify::config::{Env, Verbosity};
use rbg_notify::exit::ExitStatus;
use rbg_notify::messages::{Log, Message};

fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let argv0 = argv.first().cloned().unwrap_or_default();
    let Some(words) = argv
        .iter()
        .skip(1)
        .map(|a| a.to_str())
        .collect::<Option<Vec<&str>>>()
    else {
        return usage_error("arguments must be valid UTF-8");
    };

    // argh::from_env would exit 1 on a bad flag; 1 means "a delivery
    // failed" here, so parse by hand and exit 2.
    let args = match Args::from_args(&["rbg-notify"], &words) {
        Ok(args) => args,
        Err(EarlyExit {
            output,
            status: Ok(()),
        }) => {
            let _ = writeln!(io::stdout(), "{output}");
            return ExitCode::SUCCESS;
        }
        Err(EarlyExit {
            output,
            status: Err(()),
        }) => return usage_error(output.trim_end()),
    };
    if args.version {
        let _ = writeln!(io::stdout(), "rbg-notify {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }

    let env = Env::from_process();
    let config = match args.into_config(&argv0, &env) {
        Ok(config) => config,
        Err(message) => return usage_error(&message),
    };
    let mut log = Log::stderr(config.verbosity);
    if let Err(e) = rbg_notify::send::watch_signals() {
        log.say(Message::Warning(format!("cannot watch for signals: {e}")));
    }
    let result = rbg_notify::run(
        &config,
        &env,
        &mut io::stdin().lock(),
        &mut log,
        &mut io::stdout().lock(),
    );
    match result {
        Ok(report) => report.status().into(),
        Err(error) => {
            log.say(Message::Error(&error));
            ExitStatus::Error.into()
        }
    }
}

/// Prints a command-line error and returns the usage status.
fn usage_error(message: &str) -> ExitCode {
    // argh capitalises its messages; ours start lowercase.
    let mut chars = message.chars();
    let message: String = chars
        .next()
        .map(|c| c.to_ascii_lowercase())
        .into_iter()
        .chain(chars)
        .collect();
    let error = rbg_notify::error::Error::Usage(message);
    Log::stderr(Verbosity::Quiet).say(Message::Error(&error));
    ExitStatus::Error.into()
}
