//! A JPEG decoder that hands out rows a band at a time (libjpeg's scanline API, through the C
//! shim in `csrc/jpeg_rows.c`), with DCT-domain shrink-on-load. The pipeline resamples each band
//! as it arrives, so a render never holds the whole decoded frame.
#![allow(unsafe_code)] // The FFI to csrc/jpeg_rows.c; every call is wrapped here.

use crate::error::{ImageError, Result};
use crate::frame::{Frame, Header, Rows};
use crate::limits::Limits;
use crate::pixels::{Layout, Pixels};
use crate::probe::jpeg::read_header;
use std::ffi::{c_char, c_int, c_uint, CStr};
use std::marker::PhantomData;
use std::ptr::NonNull;

/// Start decoding a JPEG a band of rows at a time, at the shrink-on-load scale for `min_scale`.
pub(crate) fn rows<'a>(data: &'a [u8], min_scale: f64, limits: &Limits) -> Result<(JpegRows<'a>, Header)> {
    let refinement = if limits.jpeg_fast_refinement { Refinement::Fast } else { Refinement::Libjpeg };
    rows_with(data, shrink_on_load_eighths(min_scale), refinement, limits)
}

/// Start decoding a JPEG at 1/8 scale with every scan entropy-decoded, none skipped as unused at
/// that scale, so that damage anywhere in the data is found: ingest's proof that the whole
/// image is readable.
pub(crate) fn rows_every_scan<'a>(data: &'a [u8], limits: &Limits) -> Result<(JpegRows<'a>, Header)> {
    let refinement = if limits.jpeg_fast_refinement { Refinement::EveryScan } else { Refinement::Libjpeg };
    rows_with(data, 1, refinement, limits)
}

fn rows_with<'a>(
    data: &'a [u8],
    eighths: u8,
    refinement: Refinement,
    limits: &Limits,
) -> Result<(JpegRows<'a>, Header)> {
    let header = read_header(data, limits, true)?;
    // libjpeg may buffer what the frame header says and no more: what the render was admitted
    // with (`memory_estimate`), plus room for its small allocations, is its ceiling too.
    let ceiling = header.coefficient_bytes() + LIBJPEG_SMALL_ALLOCATIONS;
    let rows = JpegRows::start_with(data, eighths, limits.max_jpeg_scans, refinement, ceiling)?;
    let cmyk_inverted = rows.layout == Layout::Cmyk8 && header.adobe;
    Ok((rows, Header { orientation: header.orientation, icc: header.icc, cmyk_inverted }))
}

/// What libjpeg allocates besides its whole-image buffers (tables, row buffers of a 65,500-pixel
/// wide image), which counts against `max_memory_to_use` too.
const LIBJPEG_SMALL_ALLOCATIONS: u64 = 32 << 20;

pub(crate) fn decode(data: &[u8], min_scale: f64, limits: &Limits) -> Result<Frame> {
    let (mut rows, header) = rows(data, min_scale, limits)?;
    let mut pixels = Pixels::new(rows.width, rows.height, rows.layout)?;
    rows.read_all(&mut pixels.data)?;
    Ok(Frame::from_parts(pixels, header))
}

/// The scale (1/8, 1/4, 1/2 or 1) at which a JPEG is decoded for a render whose geometry can
/// work from `min_scale`.
pub(crate) fn decode_scale(min_scale: f64) -> f64 {
    f64::from(shrink_on_load_eighths(min_scale)) / 8.0
}

/// The smallest libjpeg-turbo scale of 1/8, 1/4, 1/2 or 1 that is at least `1.5 × min_scale`, in
/// eighths.
pub(crate) fn shrink_on_load_eighths(min_scale: f64) -> u8 {
    // Powers of two have SIMD IDCTs; 1.5× beat sharp's "just above" at equal speed (measured:
    // docs/decisions/pipeline.md, "JPEG shrink-on-load").
    let wanted = (1.5 * min_scale).min(1.0);
    [1u8, 2, 4, 8].into_iter().find(|n| f64::from(*n) / 8.0 >= wanted - 1e-9).unwrap_or(8)
}

#[repr(C)]
struct RawDecoder {
    _private: [u8; 0],
}

extern "C" {
    fn catg_jpeg_new() -> *mut RawDecoder;
    fn catg_jpeg_free(decoder: *mut RawDecoder);
    fn catg_jpeg_message(decoder: *const RawDecoder) -> *const c_char;
    fn catg_jpeg_kind(decoder: *const RawDecoder) -> c_int;
    fn catg_jpeg_start(
        decoder: *mut RawDecoder,
        data: *const u8,
        len: usize,
        eighths: c_int,
        max_scans: c_int,
        fast_refine: c_int,
        max_memory: std::ffi::c_long,
        width: *mut c_uint,
        height: *mut c_uint,
        components: *mut c_int,
    ) -> c_int;
    fn catg_jpeg_read(
        decoder: *mut RawDecoder,
        buf: *mut u8,
        stride: usize,
        max_rows: c_uint,
        rows: *mut c_uint,
    ) -> c_int;
    fn catg_jpeg_finish(decoder: *mut RawDecoder) -> c_int;
    #[cfg(any(test, feature = "fuzzing"))]
    fn catg_jpeg_fast_scans(decoder: *const RawDecoder) -> c_int;
    #[cfg(any(test, feature = "fuzzing"))]
    fn catg_jpeg_skipped_scans(decoder: *const RawDecoder) -> c_int;
}

/// Which code reads the AC scans of progressive JPEGs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refinement {
    /// `csrc/jpeg_refine.c`: refinement scans decoded with bit masks (its BMI2 variant where
    /// the CPU has BMI2), and at 1/8 the scans no output pixel reads skipped unread. Renders.
    Fast,
    /// As `Fast`, but every scan is decoded, so damage anywhere is found. Ingest's `verify`.
    EveryScan,
    /// `Fast` without the BMI2 variant (what CPUs without BMI2 run), for the cross-check.
    #[cfg(any(test, feature = "fuzzing"))]
    Portable,
    /// libjpeg-turbo's own `decode_mcu_AC_refine`, nothing skipped.
    Libjpeg,
}

impl Refinement {
    /// The flags of `catg_jpeg_start` in `csrc/jpeg_rows.c`.
    fn flags(self) -> c_int {
        const FAST_AC: c_int = 1;
        #[cfg(any(test, feature = "fuzzing"))]
        const NO_BMI2: c_int = 2;
        const EVERY_SCAN: c_int = 4;
        match self {
            Refinement::Fast => FAST_AC,
            Refinement::EveryScan => FAST_AC | EVERY_SCAN,
            #[cfg(any(test, feature = "fuzzing"))]
            Refinement::Portable => FAST_AC | NO_BMI2,
            Refinement::Libjpeg => 0,
        }
    }
}

/// A started decode of one JPEG held in `'a` bytes.
pub(crate) struct JpegRows<'a> {
    raw: NonNull<RawDecoder>,
    pub(crate) width: u32,
    pub(crate) height: u32,
    /// `Rgb8`, or `Cmyk8` for CMYK and YCCK JPEGs.
    pub(crate) layout: Layout,
    /// Rows handed out so far.
    pub(crate) row: u32,
    /// libjpeg reads from the caller's bytes until it is freed.
    _data: PhantomData<&'a [u8]>,
}

impl<'a> JpegRows<'a> {
    /// Read the header and start decoding at `eighths`/8 of the stored size (1, 2, 4 or 8; a
    /// lossless JPEG decodes at full size whatever is asked). A progressive JPEG is read whole
    /// here, into libjpeg's coefficient buffer; a baseline one is read as rows are asked for.
    /// `refinement` says which code reads a progressive JPEG's AC scans. `max_memory` bounds
    /// libjpeg's whole-image buffers (0: no bound); over it, the decode is a `ResourceLimit`.
    pub(crate) fn start_with(
        data: &'a [u8],
        eighths: u8,
        max_scans: u32,
        refinement: Refinement,
        max_memory: u64,
    ) -> Result<JpegRows<'a>> {
        // SAFETY: a plain constructor; null means out of memory.
        let raw = NonNull::new(unsafe { catg_jpeg_new() })
            .ok_or_else(|| ImageError::Internal("cannot allocate a JPEG decoder".into()))?;
        let mut rows = JpegRows { raw, width: 0, height: 0, layout: Layout::Rgb8, row: 0, _data: PhantomData };
        let (mut width, mut height, mut components): (c_uint, c_uint, c_int) = (0, 0, 0);
        let max_scans = c_int::try_from(max_scans).unwrap_or(c_int::MAX);
        let max_memory = std::ffi::c_long::try_from(max_memory).unwrap_or(std::ffi::c_long::MAX);
        // SAFETY: `data` outlives the decoder (the `'a` borrow); the out-pointers are live locals.
        let status = unsafe {
            catg_jpeg_start(
                raw.as_ptr(),
                data.as_ptr(),
                data.len(),
                c_int::from(eighths),
                max_scans,
                refinement.flags(),
                max_memory,
                &mut width,
                &mut height,
                &mut components,
            )
        };
        rows.check(status)?;
        rows.layout = match components {
            3 => Layout::Rgb8,
            4 => Layout::Cmyk8,
            other => return Err(ImageError::Internal(format!("libjpeg gave {other} components per pixel"))),
        };
        (rows.width, rows.height) = (width, height);
        Ok(rows)
    }

    /// How many scans `csrc/jpeg_refine.c` has decoded or skipped so far, and how many of
    /// those it skipped.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn fast_scans(&self) -> ScanCount {
        // SAFETY: reads fields of the live decoder.
        let (fast, skipped) =
            unsafe { (catg_jpeg_fast_scans(self.raw.as_ptr()), catg_jpeg_skipped_scans(self.raw.as_ptr())) };
        ScanCount { fast: u32::try_from(fast).unwrap_or(0), skipped: u32::try_from(skipped).unwrap_or(0) }
    }

    fn check(&self, status: c_int) -> Result<()> {
        if status == 0 {
            return Ok(());
        }
        // SAFETY: the message is a NUL-terminated buffer inside the live decoder.
        let message = unsafe { CStr::from_ptr(catg_jpeg_message(self.raw.as_ptr())) }.to_string_lossy().into_owned();
        // SAFETY: reads a field of the live decoder.
        Err(match unsafe { catg_jpeg_kind(self.raw.as_ptr()) } {
            2 => ImageError::Truncated(message),
            3 => ImageError::ResourceLimit(message),
            _ => ImageError::Corrupt(message),
        })
    }
}

impl Rows for JpegRows<'_> {
    fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    fn layout(&self) -> Layout {
        self.layout
    }

    fn row(&self) -> u32 {
        self.row
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<u32> {
        let stride = self.row_bytes();
        let max_rows = c_uint::try_from(buf.len() / stride.max(1)).unwrap_or(c_uint::MAX);
        if self.row >= self.height || max_rows == 0 {
            return Ok(0);
        }
        let mut rows: c_uint = 0;
        // SAFETY: `buf` holds `max_rows` rows of `stride` bytes, and libjpeg writes at most
        // `max_rows` rows of `row_bytes()` bytes each.
        let status = unsafe { catg_jpeg_read(self.raw.as_ptr(), buf.as_mut_ptr(), stride, max_rows, &mut rows) };
        self.check(status)?;
        self.row += rows;
        if self.row >= self.height {
            // SAFETY: every scanline has been read.
            let status = unsafe { catg_jpeg_finish(self.raw.as_ptr()) };
            self.check(status)?;
        } else if rows == 0 {
            return Err(ImageError::Internal("libjpeg returned no rows before the end".into()));
        }
        Ok(rows)
    }
}

impl Drop for JpegRows<'_> {
    fn drop(&mut self) {
        // SAFETY: the decoder was made by catg_jpeg_new and is freed once.
        unsafe { catg_jpeg_free(self.raw.as_ptr()) }
    }
}

#[cfg(any(test, feature = "fuzzing"))]
/// Scans that catg's code took over from libjpeg's decoders in one decode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ScanCount {
    /// Decoded by `csrc/jpeg_refine.c`, or skipped.
    pub(crate) fast: u32,
    /// Skipped as unused at this scale.
    pub(crate) skipped: u32,
}

#[cfg(any(test, feature = "fuzzing"))]
/// Every row of `data` decoded at `eighths`/8 (or the error), and how many scans
/// `csrc/jpeg_refine.c` read. For comparing the two refinement decoders; the caller bounds the
/// image size.
fn decode_all(data: &[u8], eighths: u8, refinement: Refinement) -> (std::result::Result<Vec<u8>, String>, ScanCount) {
    let mut rows = match JpegRows::start_with(data, eighths, 64, refinement, 0) {
        Ok(rows) => rows,
        Err(e) => return (Err(e.to_string()), ScanCount::default()),
    };
    let mut out = vec![0u8; rows.row_bytes() * rows.height as usize];
    let result = rows.read_all(&mut out).map(|()| out).map_err(|e| e.to_string());
    (result, rows.fast_scans())
}

#[cfg(any(test, feature = "fuzzing"))]
/// Decode `data` at `eighths`/8 with libjpeg's decoders for progressive AC scans and with
/// catg's (every mode), and panic unless all give the same pixels or the same error.
/// One difference is allowed: at 1/8 catg skips the AC scans of 1×1-scaled components, so where
/// libjpeg fails on damage inside such a scan catg may succeed (it never shows in the output).
/// Returns how many scans catg's code decoded or skipped. The fuzzers call this (through
/// [`crate::check_refinement_decoders`]) as well as the tests.
pub(crate) fn check_refinement_decoders(data: &[u8], eighths: u8) -> ScanCount {
    let (stock, stock_scans) = decode_all(data, eighths, Refinement::Libjpeg);
    let (fast, scans) = decode_all(data, eighths, Refinement::Fast);
    let (portable, portable_scans) = decode_all(data, eighths, Refinement::Portable);
    let (every, _) = decode_all(data, eighths, Refinement::EveryScan);
    assert_eq!((stock_scans, portable_scans), (ScanCount::default(), scans), "scans taken by catg's code");
    // Decoding every scan (what ingest's verify does) leaves nothing to be lenient about.
    for (variant, result, skips) in
        [("fast", &fast, true), ("portable", &portable, true), ("every-scan", &every, false)]
    {
        match (&stock, result) {
            (Ok(a), Ok(b)) => assert!(a == b, "at {eighths}/8 the {variant} decoder's pixels differ from libjpeg's"),
            (Err(_), _) if skips && eighths == 1 => {}
            _ => assert_eq!(&stock, result, "at {eighths}/8 ({variant})"),
        }
    }
    scans
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// Noise over gradients and edges, so blocks carry many nonzero coefficients (at q100 more
    /// than 32 of them need corrections in one block, the decoder's chunk size).
    fn busy_rgb(width: usize, height: usize, seed: u32) -> Vec<u8> {
        let mut state = seed.wrapping_mul(2_654_435_761).max(1);
        let mut out = Vec::with_capacity(width * height * 3);
        for y in 0..height {
            for x in 0..width {
                for c in 0..3 {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    let edge = if (x / 7 + y / 5 + c) % 3 == 0 { 120 } else { 0 };
                    let base = (x * 255 / width + y * 97 / height + edge) as u32;
                    out.push(((base + (state % 64)) % 256) as u8);
                }
            }
        }
        out
    }

    fn progressive(width: usize, height: usize, quality: i32, subsamp: turbojpeg::Subsamp, seed: u32) -> Vec<u8> {
        let pixels = busy_rgb(width, height, seed);
        let mut compressor = turbojpeg::Compressor::new().expect("compressor");
        compressor.set_quality(quality).expect("quality");
        compressor.set_subsamp(subsamp).expect("subsamp");
        compressor.set_progressive(true).expect("progressive");
        let image = turbojpeg::Image {
            pixels: &pixels[..],
            width,
            pitch: width * 3,
            height,
            format: turbojpeg::PixelFormat::RGB,
        };
        compressor.compress_to_vec(image).expect("compress")
    }

    /// A short differential fuzz run in every test run: progressive JPEGs damaged where the two
    /// decoders' bit readers differ most (bytes inserted, dropped or changed just before a
    /// marker, stray 0xFF fill) get the same verdict and pixels from catg's refinement decoder
    /// as from libjpeg's, at every scale. Before its bit reader refilled where libjpeg's does
    /// and its scan skipping read 0xFF fill as libjpeg does, about one such file in 8,000
    /// was accepted by one and refused by the other (fuzz/regressions/jpeg_refine keeps them).
    #[test]
    fn damage_around_markers_gets_libjpegs_verdict() {
        let bases: Vec<Vec<u8>> = (0..6u32)
            .map(|s| {
                let subsamp = if s % 2 == 0 { turbojpeg::Subsamp::Sub2x2 } else { turbojpeg::Subsamp::None };
                progressive(64 + s as usize * 24, 48 + s as usize * 16, 60 + s as i32 * 7, subsamp, s)
            })
            .collect();
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..6_000usize {
            let mut data = bases[round % bases.len()].clone();
            let markers: Vec<usize> = (2..data.len() - 1)
                .filter(|&i| data[i] == 0xFF && data[i + 1] != 0 && !(0xD0..=0xD7).contains(&data[i + 1]))
                .collect();
            let at = markers[next() as usize % markers.len()];
            let back = 1 + next() as usize % 8;
            match next() % 5 {
                0 => (0..1 + next() % 6).for_each(|_| data.insert(at, (next() % 0xFE) as u8)),
                1 => data[at.saturating_sub(back)] = next() as u8,
                2 => drop(data.drain(at.saturating_sub(back.min(6))..at)),
                3 => data.insert(at.saturating_sub(back), next() as u8),
                _ => data.insert(at.saturating_sub(back), 0xFF),
            }
            let verdict = std::panic::catch_unwind(|| crate::check_refinement_decoders(&data));
            assert!(verdict.is_ok(), "mutation {round} of base {} gets different verdicts", round % bases.len());
        }
    }

    /// The operator's switch: with `jpeg_fast_refinement` off, renders and ingest's check read
    /// every scan with libjpeg's own decoders, and give the same pixels.
    #[test]
    fn the_fast_refinement_decoder_can_be_switched_off() {
        let data = progressive(96, 64, 90, turbojpeg::Subsamp::Sub2x2, 7);
        let read = |limits: &crate::Limits, every_scan: bool| {
            let (mut rows, _) =
                if every_scan { super::rows_every_scan(&data, limits) } else { super::rows(&data, 1.0, limits) }
                    .expect("start");
            let mut pixels = vec![0u8; rows.width as usize * rows.height as usize * 3];
            rows.read_all(&mut pixels).expect("read");
            (rows.fast_scans().fast, pixels)
        };
        let on = crate::Limits::default();
        let off = crate::Limits { jpeg_fast_refinement: false, ..crate::Limits::default() };
        for every_scan in [false, true] {
            let (fast_on, pixels_on) = read(&on, every_scan);
            let (fast_off, pixels_off) = read(&off, every_scan);
            assert!(fast_on > 0, "the fast decoder was not used when on");
            assert_eq!(fast_off, 0, "the fast decoder was used when switched off");
            assert_eq!(pixels_on, pixels_off);
        }
    }

    /// A frame header whose whole-image buffer exceeds the ceiling the decode was admitted with
    /// is refused by libjpeg itself (`max_memory_to_use`), as a resource limit.
    #[test]
    fn libjpeg_refuses_buffers_over_its_ceiling() {
        let data = progressive(512, 512, 90, turbojpeg::Subsamp::None, 3);
        // 3 components × 64×64 blocks × 128 bytes = 1.5 MiB of coefficients.
        let refused = JpegRows::start_with(&data, 8, 64, Refinement::Fast, 1 << 20).err().expect("over the ceiling");
        assert_eq!(refused.reject_kind(), Some(crate::RejectKind::ResourceLimit), "{refused}");
        assert!(JpegRows::start_with(&data, 8, 64, Refinement::Fast, 4 << 20).is_ok());
    }

    fn shared(folder: &str) -> Vec<(String, Vec<u8>)> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared").join(folder);
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e} (the shared corpus and photos are needed)", dir.display()));
        let mut files: Vec<_> = entries
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("jpg") || x.eq_ignore_ascii_case("jpeg")))
            .map(|p| {
                (p.file_name().expect("a file name").to_string_lossy().into_owned(), std::fs::read(&p).expect("read"))
            })
            .collect();
        files.sort();
        files
    }

    /// The fast refinement decoder gives libjpeg's coefficients exactly: the same pixels (or
    /// the same error) at every scale, for synthetic progressive JPEGs (4:2:0, 4:2:2, 4:4:4,
    /// grey; q50-q100; sizes that are not whole MCUs), cut short at many points, for every
    /// JPEG in the shared corpus and the progressive bench photos. It must also have been used:
    /// a build that fell back to libjpeg's decoder fails here.
    #[test]
    fn fast_refinement_decodes_exactly_as_libjpeg() {
        use turbojpeg::Subsamp;
        let mut inputs: Vec<(String, Vec<u8>)> = Vec::new();
        let shapes = [(61, 43, 50, Subsamp::Sub2x2), (64, 64, 90, Subsamp::Sub2x1), (97, 31, 100, Subsamp::None)];
        for (i, (w, h, q, s)) in shapes.into_iter().enumerate() {
            inputs.push((format!("synthetic {w}x{h} q{q} {s:?}"), progressive(w, h, q, s, i as u32 + 1)));
        }
        inputs.push(("synthetic grey".into(), progressive(80, 60, 85, Subsamp::Gray, 9)));
        let cut = progressive(120, 90, 90, Subsamp::Sub2x2, 7);
        for end in (200..cut.len()).step_by(cut.len() / 23) {
            inputs.push((format!("synthetic cut at {end}"), cut[..end].to_vec()));
        }
        inputs.extend(shared("corpus"));
        // Photos: the progressive ones (the baseline ones take no refinement scans).
        inputs.extend(shared("photos").into_iter().filter(|(_, data)| data.windows(2).any(|w| w == [0xFF, 0xC2])));

        let (mut fast_scans, mut skipped_scans) = (0, 0);
        let mut progressive_inputs = 0;
        for (name, data) in &inputs {
            let is_photo = data.len() > 300_000;
            let scales: &[u8] = if is_photo { &[8, 2, 1] } else { &[8, 4, 2, 1] };
            for &eighths in scales {
                let scans = std::panic::catch_unwind(|| check_refinement_decoders(data, eighths))
                    .unwrap_or_else(|_| panic!("{name}: the decoders disagree (see above)"));
                fast_scans += scans.fast;
                skipped_scans += scans.skipped;
                progressive_inputs += u32::from(scans.fast > 0);
            }
        }
        assert!(progressive_inputs >= 20, "the fast decoder ran on {progressive_inputs} inputs ({fast_scans} scans)");
        assert!(skipped_scans >= 40, "{skipped_scans} unused scans skipped at 1/8");
    }

    /// Where each scan's entropy-coded data starts and ends, with its spectral band (Ss, Se).
    fn scans(data: &[u8]) -> Vec<(usize, usize, u8, u8)> {
        let mut out = Vec::new();
        let mut i = 2;
        while i + 4 <= data.len() {
            if data[i] != 0xFF || data[i + 1] == 0xFF {
                i += 1;
                continue;
            }
            let marker = data[i + 1];
            let length = usize::from(u16::from_be_bytes([data[i + 2], data[i + 3]]));
            if marker != 0xDA {
                i += 2 + length;
                continue;
            }
            let components = usize::from(data[i + 4]);
            let (ss, se) = (data[i + 5 + 2 * components], data[i + 6 + 2 * components]);
            let start = i + 2 + length;
            let mut end = start;
            while end + 1 < data.len() && !(data[end] == 0xFF && data[end + 1] != 0) {
                end += 1;
            }
            out.push((start, end, ss, se));
            i = end;
        }
        out
    }

    /// A render at 1/8 skips the AC scans of 1×1-scaled components, so damage there cannot stop
    /// it; ingest's `verify` decodes every scan and still refuses the file.
    #[test]
    fn damage_in_a_skipped_scan_is_still_found_by_verify() {
        let limits = crate::Limits::default();
        let clean = progressive(160, 120, 90, turbojpeg::Subsamp::None, 3);
        let probe = crate::probe(&clean, &limits).expect("probe");
        assert!(!crate::verify(&clean, &probe, &limits).expect("clean").has_alpha);
        let (start, end, ..) =
            scans(&clean).into_iter().filter(|s| s.2 > 0).max_by_key(|s| s.1 - s.0).expect("an AC scan");
        let mut found = 0;
        for at in (start..end).step_by(((end - start) / 16).max(1)) {
            // Flip bits of entropy-coded bytes, never making or breaking a 0xFF (a marker, or
            // the 0xFF00 that stands for a data byte 0xFF).
            let mut damaged = clean.clone();
            for i in at..(at + 8).min(end) {
                let flipped = damaged[i] ^ 0x5A;
                if damaged[i] != 0xFF && damaged[i - 1] != 0xFF && flipped != 0xFF {
                    damaged[i] = flipped;
                }
            }
            let (stock, _) = decode_all(&damaged, 1, Refinement::Libjpeg);
            if stock.is_ok() {
                continue; // the damage happened to decode as valid data
            }
            let (skipping, scans) = decode_all(&damaged, 1, Refinement::Fast);
            assert!(skipping.is_ok() && scans.skipped > 0, "a 1/8 decode skips the damaged scan: {skipping:?}");
            assert!(crate::verify(&damaged, &probe, &limits).is_err(), "verify refuses damage at byte {at}");
            found += 1;
        }
        assert!(found >= 3, "only {found} damaged copies failed to decode");
    }

    #[test]
    fn shrink_on_load_leaves_1_5x_for_the_resampler_at_power_of_two_scales() {
        let eighths = super::shrink_on_load_eighths;
        assert_eq!(eighths(0.05), 1);
        assert_eq!(eighths(1.0 / 12.0), 1);
        assert_eq!(eighths(0.09), 2);
        assert_eq!(eighths(0.3), 4);
        assert_eq!(eighths(0.34), 8);
        assert_eq!(eighths(2.0), 8);
    }
}
