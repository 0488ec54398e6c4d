//! What is generated from the command line's own definition: shell completions and
//! man pages.

use super::Cli;
use clap::CommandFactory;
use ocislim::Error;
use std::path::PathBuf;

/// The completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> String {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "ocislim", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The man page, or with `dir` every page (the command's and each subcommand's) there.
pub fn man_page(dir: Option<PathBuf>) -> Result<String, Error> {
    let cmd = Cli::command();
    match dir {
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut out)?;
            Ok(String::from_utf8_lossy(&out).into_owned())
        }
        Some(d) => {
            if !d.is_dir() {
                return Err(Error::Usage(format!("--dir {}: not a folder", d.display())));
            }
            clap_mangen::generate_to(cmd, &d)?;
            Ok(format!("man pages written to {}\n", d.display()))
        }
    }
}
