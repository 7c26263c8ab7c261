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
    drop(out_dir);
    run
}

/// A fresh, empty directory under the system temp dir, removed with its contents when dropped
/// (thousands of test runs must not fill the disk). Process ids are recycled, so the name also
/// carries the time, and an existing directory is never reused.
pub struct TestDir(PathBuf);

impl std::ops::Deref for TestDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl AsRef<std::path::Path> for TestDir {
    fn as_ref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn tempdir() -> TestDir {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    loop {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!(
            "catg-test-{}-{nanos:x}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        match std::fs::create_dir(&dir) {
            Ok(()) => return TestDir(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => panic!("create temp dir {}: {e}", dir.display()),
        }
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
}

/// A blocking HTTP request (run it off the async threads). Statuses are returned, not raised.
pub fn http(method: &str, url: &str, headers: &[(&str, &str)]) -> Reply {
    let agent = ureq::Agent::new_with_config(ureq::Agent::config_builder().http_status_as_error(false).build());
    let mut request = http_request(method, url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut response = agent.run(request.body(()).expect("request")).unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or_default().to_string()))
        .collect();
    let body = response.body_mut().with_config().limit(64 << 20).read_to_vec().expect("read body");
    Reply { status, headers, body }
}

fn http_request(method: &str, url: &str) -> ureq::http::request::Builder {
    ureq::http::Request::builder().method(method).uri(url)
}

/// Copy corpus or sample files into `dir` under the given names.
pub fn place(dir: &std::path::Path, files: &[(&str, &std::path::Path)]) {
    for (name, from) in files {
        let to = dir.join(name);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::copy(from, &to).unwrap_or_else(|e| panic!("copy {} -> {}: {e}", from.display(), to.display()));
    }
}

pub fn repo_file(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(relative)
}

/// Every file under `dir` (recursively) that readers can see, sorted: dot-files are temporary
/// names a writer has not published yet.
pub fn visible_files(dir: &std::path::Path) -> Vec<PathBuf> {
    files_under(dir, false)
}

/// Every file under `dir`, hidden ones (temporary files) included, sorted.
pub fn all_files(dir: &std::path::Path) -> Vec<PathBuf> {
    files_under(dir, true)
}

fn files_under(dir: &std::path::Path, hidden_too: bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if hidden_too || !entry.file_name().to_string_lossy().starts_with('.') {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// A progressive JPEG of a single DC-only scan, every block mid-grey: a few hundred kilobytes
/// that make libjpeg allocate its whole-image coefficient buffer (128 bytes per block of every
/// component). `components` 3 is YCbCr 4:4:4, 4 is CMYK; `tag` goes into a comment, so copies
/// differ by one byte.
#[allow(dead_code)]
pub fn dc_only_progressive_jpeg(width: u16, height: u16, components: u8, tag: u8) -> Vec<u8> {
    let segment = |out: &mut Vec<u8>, marker: u8, body: &[u8]| {
        out.extend_from_slice(&[0xFF, marker]);
        out.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(body);
    };
    let mut out = vec![0xFF, 0xD8];
    segment(&mut out, 0xFE, &[b'c', b'a', b't', b'g', tag]);
    let mut quant = vec![0u8];
    quant.extend_from_slice(&[1; 64]);
    segment(&mut out, 0xDB, &quant);
    let mut frame = vec![8];
    frame.extend_from_slice(&height.to_be_bytes());
    frame.extend_from_slice(&width.to_be_bytes());
    frame.push(components);
    for id in 1..=components {
        frame.extend_from_slice(&[id, 0x11, 0]);
    }
    segment(&mut out, 0xC2, &frame);
    // DC table 0: one code, `0`, for category 0 (a difference of zero).
    let mut table = vec![0x00, 1];
    table.extend_from_slice(&[0; 15]);
    table.push(0);
    segment(&mut out, 0xC4, &table);
    let mut scan = vec![components];
    for id in 1..=components {
        scan.extend_from_slice(&[id, 0x00]);
    }
    scan.extend_from_slice(&[0, 0, 0]);
    segment(&mut out, 0xDA, &scan);
    let blocks = u64::from(width).div_ceil(8) * u64::from(height).div_ceil(8) * u64::from(components);
    out.resize(out.len() + blocks.div_ceil(8) as usize, 0);
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

/// The peak resident memory (VmHWM) of a running process, in MB.
#[allow(dead_code)]
pub fn peak_rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    let kb: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc status");
    kb / 1024.0
}
