//! Progress bars: one per layer as it streams, with bytes, rate and ETA, drawn on
//! stderr by indicatif; or, for CI logs, one plain line as each phase starts, with the
//! time since the start and its size. The binary decides which (`--progress`, stderr a
//! terminal, `-q`); hidden bars cost a counter increment, and the library never draws
//! otherwise.

use indicatif::{
    MultiProgress, ProgressBar, ProgressBarIter, ProgressDrawTarget, ProgressFinish, ProgressStyle,
};
use std::io::Read;

/// Redraws per second at most, so bars do not flicker.
const REFRESH_HZ: u8 = 8;
/// Fits the terminal: the bar takes what the numbers leave (at least 10 columns of 80).
const TEMPLATE: &str =
    "{prefix:>12} [{wide_bar}] {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>11} eta {eta:<3}";
/// A stream of unknown length (standard input): bytes so far and the rate.
const STREAM_TEMPLATE: &str = "{prefix:>12} {spinner} {bytes:>10} {bytes_per_sec:>11}";

/// A set of progress bars, shown or hidden.
#[derive(Clone, Debug)]
pub struct Progress {
    multi: MultiProgress,
    /// Plain lines instead of bars: when the run started.
    plain: Option<std::time::Instant>,
}

impl Default for Progress {
    fn default() -> Self {
        Progress::hidden()
    }
}

impl Progress {
    /// Bars that are never drawn.
    pub fn hidden() -> Progress {
        Progress {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::hidden()),
            plain: None,
        }
    }

    /// One plain line on stderr as each phase starts (`[  1.2s] layer 3: 12.3 MiB`):
    /// what a CI log can hold, where bars would be redrawn escape sequences.
    pub fn plain() -> Progress {
        Progress {
            plain: Some(std::time::Instant::now()),
            ..Progress::hidden()
        }
    }

    /// Bars drawn on stderr.
    pub fn stderr() -> Progress {
        Progress {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(REFRESH_HZ)),
            plain: None,
        }
    }

    /// A bar for `total` bytes named `name` (0: a stream whose length is not known);
    /// finish it with [`ProgressBar::finish`].
    pub fn bar(&self, name: &str, total: u64) -> ProgressBar {
        if let Some(start) = self.plain {
            let size = match total {
                0 => "streaming".to_string(),
                n => indicatif::HumanBytes(n).to_string(),
            };
            eprintln!(
                "[{:>6.1}s] {}: {size}",
                start.elapsed().as_secs_f64(),
                crate::escape::one_line(name),
            );
            return ProgressBar::hidden();
        }
        let (bar, template) = match total {
            0 => (ProgressBar::no_length(), STREAM_TEMPLATE),
            n => (ProgressBar::new(n), TEMPLATE),
        };
        let style = ProgressStyle::with_template(template)
            .expect("template is valid")
            .progress_chars("=> ");
        // Cleared when dropped: the report, not a wall of full bars, is what stays.
        let bar = self
            .multi
            .add(bar.with_style(style).with_finish(ProgressFinish::AndClear));
        bar.set_prefix(name.to_string());
        bar
    }

    /// Wraps a reader so its bytes advance a bar named `name`.
    pub fn reader<R: Read>(&self, name: &str, total: u64, inner: R) -> ProgressBarIter<R> {
        self.bar(name, total).wrap_read(inner)
    }
}
