//! What the numbers were measured on: cores, memory, CPU model, OS, the commit, and the cost of
//! a cold release build when its log is given.

use std::fs;
use std::path::Path;
use std::process::Command;

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub memory_gib: f64,
    pub cpu_model: String,
    pub os: String,
    pub kernel: String,
    pub git_commit: String,
    pub git_dirty: bool,
}

impl Machine {
    pub fn describe(repo: &Path) -> Self {
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|line| line.strip_prefix("model name"))
            .and_then(|rest| rest.split_once(':'))
            .map_or_else(|| "unknown".into(), |(_, model)| model.trim().to_owned());
        let memory_kib: u64 = fs::read_to_string("/proc/meminfo")
            .unwrap_or_default()
            .lines()
            .find_map(|line| line.strip_prefix("MemTotal:"))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        let os = fs::read_to_string("/etc/os-release")
            .unwrap_or_default()
            .lines()
            .find_map(|line| line.strip_prefix("PRETTY_NAME="))
            .map_or_else(
                || "unknown".into(),
                |name| name.trim_matches('"').to_owned(),
            );
        let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or_else(|_| "unknown".into(), |k| k.trim().to_owned());
        let git = |args: &[&str]| {
            Command::new("git")
                .arg("-C")
                .arg(repo)
                .args(args)
                .output()
                .ok()
                .filter(|out| out.status.success())
                .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        };
        Self {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_gib: memory_kib as f64 / (1024.0 * 1024.0),
            cpu_model,
            os,
            kernel,
            git_commit: git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into()),
            git_dirty: git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty()),
        }
    }

    pub fn summary(&self) -> String {
        format!(
            "{}, {} cores, {:.1} GiB RAM, {} (Linux {}), commit {}{}",
            self.cpu_model,
            self.cores,
            self.memory_gib,
            self.os,
            self.kernel,
            &self.git_commit[..self.git_commit.len().min(12)],
            if self.git_dirty {
                " (with local changes)"
            } else {
                ""
            }
        )
    }
}

/// The cold `cargo build --release` a log records with a last line `rc=N secs=S`.
#[derive(Debug, Clone, Serialize)]
pub struct BuildCost {
    pub log: String,
    pub exit_code: i32,
    pub secs: f64,
}

impl BuildCost {
    pub fn read(log: &Path) -> Option<Self> {
        let text = fs::read_to_string(log).ok()?;
        let line = text.lines().rev().find(|line| line.contains("secs="))?;
        let field = |key: &str| {
            line.split_whitespace()
                .find_map(|word| word.strip_prefix(key))
                .map(str::to_owned)
        };
        Some(Self {
            log: log.display().to_string(),
            exit_code: field("rc=")?.parse().ok()?,
            secs: field("secs=")?.parse().ok()?,
        })
    }
}
