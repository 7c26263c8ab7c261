//! JPEG XL through jixel (pure Rust, lossy VarDCT; alpha as an extra channel).

use crate::error::{ImageError, Result};
use crate::pixels::{Layout, Pixels};

/// jixel's default speed: square transforms only (its slower speeds, which search more
/// transforms, are not measured here yet).
const JXL_SPEED: jixel::Speed = jixel::Speed::Fast;

/// One thread a render, as the other encoders: renders already run side by side.
const JXL_THREADS: usize = 1;

/// `quality` is libjpeg-like (jixel maps q90 to butteraugli distance 1.0, q80 to 1.9); `tiff`,
/// an EXIF block to carry (TIFF structure).
pub(crate) fn encode(pixels: &Pixels, quality: u8, tiff: Option<&[u8]>) -> Result<Vec<u8>> {
    let mut config = jixel::EncodeConfig::default()
        .with_quality(f32::from(quality))
        .with_speed(JXL_SPEED)
        .with_num_threads(JXL_THREADS);
    if let Some(tiff) = tiff {
        config = config.with_exif(tiff.to_vec());
    }
    let (width, height) = (pixels.width as usize, pixels.height as usize);
    let encoded = match pixels.layout {
        Layout::Rgb8 => jixel::encode_image(&pixels.data, width, height, &config),
        Layout::Rgba8 => jixel::encode_image_with_alpha(&pixels.data, width, height, &config),
        other => return Err(ImageError::encoder("JPEG XL", format!("unexpected pixel layout {other:?}"))),
    };
    encoded.map_err(|e| ImageError::encoder("JPEG XL", format!("{e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes with jxl-oxide (an independent decoder) to interleaved 8-bit samples.
    fn decode(bytes: &[u8]) -> (u32, u32, usize, Vec<u8>) {
        let image = jxl_oxide::JxlImage::builder().read(bytes).expect("a JPEG XL image");
        let render = image.render_frame(0).expect("renders");
        let stream = render.stream();
        let (width, height, channels) = (stream.width(), stream.height(), stream.channels() as usize);
        let mut samples = vec![0f32; width as usize * height as usize * channels];
        render.stream().write_to_buffer(&mut samples);
        let bytes = samples.iter().map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8).collect();
        (width, height, channels, bytes)
    }

    /// Flat quadrants of four colours, with a soft alpha ramp when asked.
    fn quadrants(width: u32, height: u32, layout: Layout) -> Pixels {
        const COLOURS: [[u8; 3]; 4] = [[200, 40, 40], [40, 160, 60], [30, 60, 200], [230, 220, 210]];
        let mut pixels = Pixels::new(width, height, layout).expect("pixels");
        let channels = layout.channels();
        for (i, px) in pixels.data.chunks_exact_mut(channels).enumerate() {
            let (x, y) = (i as u32 % width, i as u32 / width);
            let quadrant = usize::from(x >= width / 2) + 2 * usize::from(y >= height / 2);
            px[..3].copy_from_slice(&COLOURS[quadrant]);
            if channels == 4 {
                px[3] = (x * 255 / (width - 1)) as u8;
            }
        }
        pixels
    }

    fn probe(data: &[u8], width: u32, channels: usize, x: u32, y: u32) -> &[u8] {
        let at = (y * width + x) as usize * channels;
        &data[at..at + channels]
    }

    #[test]
    fn colours_round_trip_through_an_independent_decoder() {
        let pixels = quadrants(96, 64, Layout::Rgb8);
        let bytes = encode(&pixels, 90, None).expect("encodes");
        assert_eq!(&bytes[..2], [0xFF, 0x0A], "a bare codestream");
        let (width, height, channels, data) = decode(&bytes);
        assert_eq!((width, height, channels), (96, 64, 3));
        for (x, y, want) in
            [(20, 15, [200, 40, 40]), (75, 15, [40, 160, 60]), (20, 50, [30, 60, 200]), (75, 50, [230, 220, 210])]
        {
            let got = probe(&data, width, channels, x, y);
            for (g, w) in got.iter().zip(want) {
                assert!(g.abs_diff(w) <= 4, "at ({x},{y}) got {got:?}, want {want:?}: samples read as sRGB");
            }
        }
    }

    #[test]
    fn alpha_is_kept_and_quality_trades_bytes() {
        let pixels = quadrants(96, 64, Layout::Rgba8);
        let (width, _, channels, data) = decode(&encode(&pixels, 90, None).expect("encodes"));
        assert_eq!(channels, 4, "alpha kept");
        for x in [0, 48, 95] {
            let alpha = probe(&data, width, channels, x, 32)[3];
            assert!(alpha.abs_diff((x * 255 / 95) as u8) <= 3, "alpha at x={x}: {alpha}");
        }
        let noisy = {
            let mut p = quadrants(96, 64, Layout::Rgb8);
            for (i, v) in p.data.iter_mut().enumerate() {
                *v = v.wrapping_add(((i * 7919) % 23) as u8);
            }
            p
        };
        let small = encode(&noisy, 40, None).expect("encodes").len();
        let large = encode(&noisy, 95, None).expect("encodes").len();
        assert!(small * 2 < large, "q40 {small} B vs q95 {large} B");
    }

    #[test]
    fn exif_goes_into_a_container() {
        let tiff = b"MM\0\x2a\0\0\0\x08\0\0\0\0\0\0";
        let bytes = encode(&quadrants(16, 16, Layout::Rgb8), 80, Some(tiff)).expect("encodes");
        assert_eq!(&bytes[4..8], b"JXL ", "the container's signature box");
        assert!(bytes.windows(4).any(|w| w == b"Exif"), "an Exif box");
        let (width, height, _, _) = decode(&bytes);
        assert_eq!((width, height), (16, 16));
    }
}
