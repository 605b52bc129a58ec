//! A one-line progress display on stderr: `[ 37/264] tpch q05 basin run 2/3 | 1m12s`. On a
//! terminal the line is rewritten in place; otherwise (logs, tests) one line per query.

use std::io::{IsTerminal, Write};
use std::time::Instant;

pub struct Progress {
    label: String,
    total: usize,
    done: usize,
    started: Instant,
    terminal: bool,
}

impl Progress {
    pub fn new(label: &str, total: usize) -> Self {
        Self {
            label: label.to_owned(),
            total,
            done: 0,
            started: Instant::now(),
            terminal: std::io::stderr().is_terminal(),
        }
    }

    /// Shows `step` as the work now under way.
    pub fn step(&mut self, step: &str) {
        if self.terminal {
            let line = self.line(step);
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K{line}");
            let _ = err.flush();
        }
    }

    /// Counts one unit of work as done.
    pub fn advance(&mut self) {
        self.done = (self.done + 1).min(self.total);
    }

    /// A line that stays (a query finished, a warning).
    pub fn note(&mut self, message: &str) {
        let line = self.line(message);
        if self.terminal {
            eprintln!("\r\x1b[2K{line}");
        } else {
            eprintln!("{line}");
        }
    }

    fn line(&self, step: &str) -> String {
        let secs = self.started.elapsed().as_secs();
        let width = self.total.to_string().len();
        format!(
            "[{:>width$}/{}] {} {step} | {}m{:02}s",
            self.done,
            self.total,
            self.label,
            secs / 60,
            secs % 60
        )
    }

    pub fn finish(&mut self) {
        if self.terminal {
            eprintln!();
        }
    }
}
