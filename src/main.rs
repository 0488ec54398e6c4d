//! The `ocislim` command: parses arguments, runs the command [`cli::run`] names, prints
//! its report and maps its error to an exit status (0 done, 1 failed, 2 usage).

mod cli;

use clap::Parser;
use ocislim::Error;
use ocislim::cleanup::STAGED;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use signal_hook::low_level::{emulate_default_handler, signal_name};
use std::io::Write;

/// On SIGINT, SIGTERM or SIGHUP, removes what is staged and dies of that signal, as if it
/// had not been caught (the shell sees 130, 143 or 129).
fn remove_staged_on_signal() -> std::io::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            let held = STAGED.abandon();
            let name = signal_name(sig).unwrap_or("a signal");
            if held.removed > 0 {
                eprintln!("error: interrupted by {name}; the partial output was removed");
            } else {
                eprintln!("error: interrupted by {name}");
            }
            // The process ends by this signal's default action, or just below.
            let _ = emulate_default_handler(sig);
            std::process::exit(128 + sig);
        }
    });
    Ok(())
}

/// Writes the report where it goes. A closed pipe (`| head`) is not an error.
fn print(text: &str, to_stdout: bool) {
    let written = if to_stdout {
        std::io::stdout().write_all(text.as_bytes())
    } else {
        std::io::stderr().write_all(text.as_bytes())
    };
    if let Err(e) = written
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        fail(&e.into());
    }
}

/// Prints `err` on one line, its control characters escaped, and exits with its status.
fn fail(err: &Error) -> ! {
    eprintln!("error: {}", ocislim::escape::one_line(&err.message()));
    std::process::exit(err.exit_code());
}

fn main() {
    let cli = cli::Cli::parse();
    ocislim::transport::register();
    if let Err(e) = remove_staged_on_signal() {
        eprintln!("error: cannot handle signals: {e}");
        std::process::exit(1);
    }
    let silenced = cli.silenced();
    let to_stdout = cli.report_to_stdout();
    match cli::run::run(cli) {
        Ok(printed) => {
            if !silenced {
                print(&printed.text, to_stdout);
                print(&printed.notes, false);
            }
            if let Some(reason) = printed.failed {
                fail(&Error::Gate(reason));
            }
        }
        Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(err) => {
            // An interruption removing the staged output makes the pipeline fail: that
            // error is not the story, so wait for the signal thread to end the process.
            STAGED.settle();
            fail(&err);
        }
    }
}
