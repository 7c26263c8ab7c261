//! Shared by the CLI and corpus tests: where the corpus is, and running `catg` with its CPU
//! time and peak memory measured.
#![allow(dead_code)]
#![allow(unsafe_code)] // wait4(2): the only way to read one child's own peak RSS.

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// `../shared/corpus` beside the repository, or `$CATG_CORPUS`. Missing is a failure, never a
/// skip: the corpus is what these tests are about.
pub fn corpus_dir() -> PathBuf {
    let dir = std::env::var_os("CATG_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"));
    assert!(
        dir.join("MANIFEST.json").is_file(),
        "the test corpus is missing: expected {}/MANIFEST.json (clone the repository beside `shared/`, or set CATG_CORPUS)",
        dir.display()
    );
    dir
}

pub fn manifest() -> serde_json::Value {
    let text = std::fs::read_to_string(corpus_dir().join("MANIFEST.json")).expect("read MANIFEST.json");
    serde_json::from_str(&text).expect("MANIFEST.json is JSON")
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub cpu_seconds: f64,
    pub max_rss_mb: f64,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}): {:?}", self.stdout))
    }
}

/// Run the `catg` binary and measure that one child with wait4(2).
pub fn catg(args: &[&str], env: &[(&str, &str)]) -> Run {
    let out_dir = tempdir();
    let (stdout_path, stderr_path) = (out_dir.join("stdout"), out_dir.join("stderr"));
    let child = Command::new(env!("CARGO_BIN_EXE_catg"))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).expect("stdout file"))
        .stderr(std::fs::File::create(&stderr_path).expect("stderr file"))
        .spawn()
        .expect("spawn catg");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data that wait4 fills in; the pid is our own child, waited once.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4 failed");
    std::mem::forget(child);
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let run = Run {
        code: if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -1 },
        stdout: std::fs::read_to_string(&stdout_path).expect("read stdout"),
        stderr: std::fs::read_to_string(&stderr_path).expect("read stderr"),
        cpu_seconds: seconds(usage.ru_utime) + seconds(usage.ru_stime),
        max_rss_mb: usage.ru_maxrss as f64 / 1024.0,
    };
    let _ = std::fs::remove_dir_all(out_dir);
    run
}

/// A fresh directory under the system temp dir.
pub fn tempdir() -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir =
        std::env::temp_dir().join(format!("catg-test-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}
