//! Every input the fuzzers ever crashed on (`fuzz/regressions/<target>/`), plus their seeds and
//! the shared corpus, replayed through the fuzz targets' own checks (`fuzz/src/lib.rs`) in the
//! normal test run: a crash found once stays fixed without a nightly toolchain.

mod support;

#[path = "../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod cases;

use std::path::Path;
use support::{corpus_dir, repo_file};

fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    out.sort();
    out
}

fn replay(target: &str, check: fn(&[u8]), extra: &[std::path::PathBuf]) -> usize {
    let mut inputs = files(&repo_file(&format!("fuzz/regressions/{target}")));
    inputs.extend(files(&repo_file(&format!("fuzz/seeds/{target}"))));
    inputs.extend_from_slice(extra);
    for path in &inputs {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "fuzz target {target} fails on {}", path.display());
    }
    inputs.len()
}

#[test]
fn every_saved_fuzz_input_passes_its_target() {
    let corpus: Vec<_> =
        files(&corpus_dir()).into_iter().filter(|p| p.extension().is_some_and(|e| e != "json" && e != "md")).collect();
    assert!(corpus.len() >= 40, "the shared corpus is missing: {}", corpus_dir().display());
    assert!(replay("recipe", cases::recipe, &[]) >= 5, "the recipe seeds are missing");
    replay("probe", cases::probe_header, &corpus);
    replay("render", cases::render, &corpus);
    assert!(replay("jpeg_refine", cases::jpeg_refine, &corpus) >= 45, "the jpeg_refine seeds are missing");
}
