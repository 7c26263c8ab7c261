//! Prints a SHA-256 of every variant a fixed set of recipes renders from every image in the
//! given folders, one line each: run before and after a change to the pipeline that must not
//! change output bytes, and diff the two (`scripts/render-digest` does both).

use catg_image::{probe, render_probed, Fit, Limits, OutputFormat, RenderSpec, Resize};
use sha2::{Digest, Sha256};
use std::path::PathBuf;

fn main() {
    let limits = Limits::default();
    let mut paths: Vec<PathBuf> = std::env::args()
        .skip(1)
        .flat_map(|dir| std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir}: {e}")))
        .map(|entry| entry.expect("entry").path())
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    for path in paths {
        let name = path.display();
        let data = std::fs::read(&path).expect("read");
        let probed = match probe(&data, &limits) {
            Ok(probed) => probed,
            Err(e) => {
                println!("{name}\tprobe\t{e}");
                continue;
            }
        };
        let (w, h) = (probed.width(), probed.height());
        let resize = |width: u32, height: Option<u32>, fit: Fit, enlarge: bool| Resize {
            width: Some(width.max(1)),
            height: height.map(|h| h.max(1)),
            fit,
            enlarge,
            ..Resize::default()
        };
        let specs = [
            (resize(w / 3, None, Fit::Contain, false), OutputFormat::Png, 80),
            (resize(w / 2, Some(h / 4), Fit::Cover, false), OutputFormat::Jpeg, 80),
            (resize(w * 2 / 3, Some(h / 2), Fit::Contain, false), OutputFormat::Webp, 75),
            (resize(w / 9, Some(h / 7), Fit::Fill, false), OutputFormat::Png, 80),
            (resize(400, None, Fit::Contain, false), OutputFormat::Jpeg, 80),
            (resize(64, Some(64), Fit::Cover, false), OutputFormat::Avif, 60),
            (resize(w.saturating_mul(2).min(4000), None, Fit::Contain, true), OutputFormat::Webp, 80),
        ];
        for (resize, format, quality) in specs {
            let spec = RenderSpec {
                resize,
                effects: catg_image::Effects::default(),
                format,
                quality,
                animate: true,
                progressive: false,
            };
            let line = match render_probed(&data, &probed, &spec, &limits) {
                Ok(out) => format!("{}x{}\t{}", out.width, out.height, hex(&Sha256::digest(&out.bytes))),
                Err(e) => format!("error\t{e}"),
            };
            println!("{name}\t{resize:?} {format} q{quality}\t{line}");
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
