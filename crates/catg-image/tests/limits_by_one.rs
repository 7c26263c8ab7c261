//! Every image limit, exactly at its value (accepted) and crossed by one (refused with the
//! documented kind), on real inputs: synthetic PNGs and the shared corpus.

use catg_image::{probe, render, Limits, OutputFormat, RejectKind, RenderSpec, Resize};
use std::path::PathBuf;

fn corpus(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (the shared corpus is needed)", path.display()))
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([x as u8, y as u8, 9]));
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).expect("encode");
    out.into_inner()
}

/// The total size of a JPEG's ICC profile, from its APP2 `ICC_PROFILE` chunks (walked here
/// independently of the probe).
fn jpeg_icc_bytes(data: &[u8]) -> usize {
    let (mut pos, mut total) = (2, 0);
    while pos + 4 <= data.len() && data[pos] == 0xFF && data[pos + 1] != 0xDA {
        let len = usize::from(u16::from_be_bytes([data[pos + 2], data[pos + 3]]));
        let body = &data[pos + 4..pos + 2 + len];
        if data[pos + 1] == 0xE2 && body.starts_with(b"ICC_PROFILE\0") {
            total += body.len() - 14;
        }
        pos += 2 + len;
    }
    total
}

fn spec(width: u32) -> RenderSpec {
    RenderSpec {
        resize: Resize { width: Some(width), ..Resize::default() },
        effects: catg_image::Effects::default(),
        format: OutputFormat::Png,
        quality: 80,
        animate: true,
        progressive: false,
    }
}

/// `at` must pass and `over` (the same limit minus one) must be refused as `kind`.
fn by_one(name: &str, data: &[u8], width: u32, at: Limits, over: Limits, kind: RejectKind) {
    if let Err(e) = render(data, &spec(width), &at) {
        panic!("{name}: refused at the limit: {e}");
    }
    let refused = render(data, &spec(width), &over).expect_err(name);
    assert_eq!(refused.reject_kind(), Some(kind), "{name}: {refused}");
}

#[test]
fn every_image_limit_holds_at_its_value_and_refuses_one_past_it() {
    let d = Limits::default();

    let small = png(300, 200);
    let bytes = small.len() as u64;
    by_one(
        "input bytes",
        &small,
        50,
        Limits { max_input_bytes: bytes, ..d.clone() },
        Limits { max_input_bytes: bytes - 1, ..d.clone() },
        RejectKind::TooLarge,
    );

    by_one(
        "pixels",
        &small,
        50,
        Limits { max_pixels: 60_000, ..d.clone() },
        Limits { max_pixels: 59_999, ..d.clone() },
        RejectKind::TooManyPixels,
    );

    // 300x200 to 150 wide is 150x100.
    by_one(
        "output pixels",
        &small,
        150,
        Limits { max_output_pixels: 15_000, ..d.clone() },
        Limits { max_output_pixels: 14_999, ..d.clone() },
        RejectKind::ResourceLimit,
    );

    let animated = corpus("gif_animated.gif");
    let frames = probe(&animated, &d).expect("probe").frames;
    assert!(frames > 1, "an animated GIF");
    by_one(
        "frames",
        &animated,
        20,
        Limits { max_frames: frames, ..d.clone() },
        Limits { max_frames: frames - 1, ..d.clone() },
        RejectKind::TooManyFrames,
    );

    let progressive = corpus("jpeg_progressive.jpg");
    let scans = probe(&progressive, &d).expect("probe").jpeg_scans;
    assert!(scans > 1, "a progressive JPEG");
    by_one(
        "progressive scans",
        &progressive,
        20,
        Limits { max_jpeg_scans: scans, ..d.clone() },
        Limits { max_jpeg_scans: scans - 1, ..d.clone() },
        RejectKind::ResourceLimit,
    );

    let tagged = corpus("jpeg_icc_displayp3.jpg");
    let icc = jpeg_icc_bytes(&tagged);
    assert!(icc > 100, "an ICC profile");
    by_one(
        "ICC bytes",
        &tagged,
        20,
        Limits { max_icc_bytes: icc, ..d.clone() },
        Limits { max_icc_bytes: icc - 1, ..d.clone() },
        RejectKind::ResourceLimit,
    );
}
