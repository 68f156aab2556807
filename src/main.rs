//! The `rbg-notify` command: parses the command line, runs the library, and
//! reports any error once before exiting with the status of `exit.rs`.

use std::ffi::OsString;
use std::io::{self, Write};
use std::process::ExitCode;

use rbg_notify::cli::{self, Early};
use rbg_notify::config::{Env, Verbosity};
use rbg_notify::error::Error;
use rbg_notify::exit::ExitStatus;
use rbg_notify::messages::{Log, Message};

fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let env = Env::from_process();
    // The HTTP client would read these itself, with no regard for no_proxy;
    // proxy.rs decides from the copy in `env` instead. Nothing else runs
    // yet, so changing the environment races with no one.
    for name in rbg_notify::proxy::VARIABLES {
        std::env::remove_var(name);
    }
    let config = match cli::parse(&argv, &env) {
        Ok(config) => config,
        Err(Early::Print(text)) => {
            let _ = writeln!(io::stdout(), "{text}");
            return ExitCode::SUCCESS;
        }
        Err(Early::Usage(message)) => {
            Log::stderr(Verbosity::Quiet).say(Message::Error(&Error::Usage(message)));
            return ExitStatus::Error.into();
        }
    };

    // A panic, should one happen, is one line to the pusher like every
    // other message, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let text = format!("internal error: {info}").replace('\n', " ");
        Log::stderr(Verbosity::Quiet).say(Message::Error(&Error::Usage(text)));
    }));
    let mut log = Log::stderr(config.verbosity);
    // SAFETY: nothing has started a thread yet.
    if let Err(e) = unsafe { rbg_notify::git::tune_libgit2() } {
        log.say(Message::Warning(rbg_notify::error::chain(&e)));
    }
    if let Err(e) = rbg_notify::send::watch_signals() {
        log.say(Message::Warning(format!("cannot watch for signals: {e}")));
    }
    let mut stdin = io::stdin().lock();
    let mut stdout = io::stdout().lock();
    match rbg_notify::run(&config, &env, &mut stdin, &mut log, &mut stdout) {
        Ok(report) => report.status().into(),
        Err(error) => {
            log.say(Message::Error(&error));
            ExitStatus::Error.into()
        }
    }
}
