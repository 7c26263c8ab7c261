//! Compiles the C shims over libjpeg-turbo against the headers that `turbojpeg-sys` built (its
//! static library already holds the libjpeg API they call):
//! - csrc/jpeg_rows.c, the scanline reader;
//! - csrc/jpeg_write.c, the JPEG encoder (its own quantisation, libjpeg's DCT and entropy coding);
//! - csrc/jpeg_refine.c, the faster decoder for progressive refinement scans. It mirrors
//!   libjpeg-turbo 3.1.0's private entropy state, so it is switched on only when the headers
//!   say 3.1.0; with any other version libjpeg's own decoder runs, and a test says so.

const REFINE_LAYOUT_VERSION: &str = "3001000";

fn main() {
    println!("cargo:rerun-if-changed=csrc/jpeg_rows.c");
    println!("cargo:rerun-if-changed=csrc/jpeg_refine.c");
    println!("cargo:rerun-if-changed=csrc/jpeg_write.c");
    let include =
        std::env::var("DEP_TURBOJPEG_INCLUDE").expect("turbojpeg-sys reports its include path (DEP_TURBOJPEG_INCLUDE)");
    let mut build = cc::Build::new();
    for path in include.split(',') {
        build.include(path);
    }
    let version = include.split(',').find_map(|path| {
        let config = std::fs::read_to_string(std::path::Path::new(path).join("jconfig.h")).ok()?;
        config
            .lines()
            .find_map(|line| line.strip_prefix("#define LIBJPEG_TURBO_VERSION_NUMBER").map(|v| v.trim().to_string()))
    });
    if version.as_deref() == Some(REFINE_LAYOUT_VERSION) {
        build.define("CATG_FAST_REFINE", None);
    } else {
        println!(
            "cargo:warning=libjpeg-turbo {version:?} is not {REFINE_LAYOUT_VERSION}: progressive refinement scans use libjpeg's own decoder"
        );
    }
    build
        .file("csrc/jpeg_rows.c")
        .file("csrc/jpeg_refine.c")
        .file("csrc/jpeg_write.c")
        .warnings(true)
        .compile("catg_jpeg_rows");
}
