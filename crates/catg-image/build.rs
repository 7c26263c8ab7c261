//! Compiles csrc/jpeg_rows.c, the scanline reader, against the libjpeg-turbo headers that
//! `turbojpeg-sys` built (its static library already holds the libjpeg API it calls).

fn main() {
    println!("cargo:rerun-if-changed=csrc/jpeg_rows.c");
    let include =
        std::env::var("DEP_TURBOJPEG_INCLUDE").expect("turbojpeg-sys reports its include path (DEP_TURBOJPEG_INCLUDE)");
    let mut build = cc::Build::new();
    for path in include.split(',') {
        build.include(path);
    }
    build.file("csrc/jpeg_rows.c").warnings(true).compile("catg_jpeg_rows");
}
