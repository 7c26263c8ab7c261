//! Examine a source object in one streaming pass: fingerprint every byte, sniff the head, keep
//! the body only while it is small enough to render, and probe it.
//!
//! Memory is bounded by `Limits::max_input_bytes` for images and by a 64 KiB buffer for
//! everything else: a 1 GiB non-image is fingerprinted without being held.

use crate::fingerprint::{Fingerprint, HashingReader};
use catg_image::{has_transparency, probe, sniff, verify, ImageError, Limits, Probe, Summary, SNIFF_LEN};
use std::io::{self, Read};

/// What examining a source found. A rejected source still has a fingerprint, so it can be
/// recorded as a rejected asset.
#[derive(Debug)]
pub struct Examined {
    pub fingerprint: Fingerprint,
    pub bytes: u64,
    pub verdict: Result<Probe, ImageError>,
    /// The whole input, kept when the verdict is `Ok` (it is needed to render).
    pub body: Option<Vec<u8>>,
}

/// Hash, sniff and probe what `reader` yields, keeping the bytes of a good image. `size_hint` is
/// the expected length (0 if unknown): the body is allocated once at that size, instead of
/// doubling its way there (which peaked at twice a large file).
pub fn examine<R: Read>(reader: R, size_hint: u64, limits: &Limits) -> io::Result<Examined> {
    let mut reader = HashingReader::new(reader);
    let mut body = Vec::with_capacity(SNIFF_LEN);
    (&mut reader).take(SNIFF_LEN as u64).read_to_end(&mut body)?;
    let verdict = match sniff(&body) {
        Err(rejected) => Err(rejected),
        Ok(_) => {
            let expected = size_hint.min(limits.max_input_bytes.saturating_add(1)) as usize;
            // Only a hint: if it is refused or wrong, reading grows the buffer as needed.
            let _ = body.try_reserve_exact(expected.saturating_sub(body.len()));
            // Read at most one byte past the limit: enough to know it is too large.
            (&mut reader)
                .take(limits.max_input_bytes.saturating_add(1).saturating_sub(body.len() as u64))
                .read_to_end(&mut body)?;
            if body.len() as u64 > limits.max_input_bytes {
                Err(ImageError::TooLarge { bytes: body.len() as u64, limit: limits.max_input_bytes })
            } else {
                probe(&body, limits)
            }
        }
    };
    let (fingerprint, bytes) = reader.finish()?;
    let verdict = match verdict {
        // Report the real size, not the point where reading stopped.
        Err(ImageError::TooLarge { limit, .. }) => Err(ImageError::TooLarge { bytes, limit }),
        other => other,
    };
    let body = verdict.is_ok().then_some(body);
    Ok(Examined { fingerprint, bytes, verdict, body })
}

impl Examined {
    /// Replace the header's alpha declaration with the truth (see
    /// [`catg_image::has_transparency`]); a decode failure on the way rejects the source.
    pub fn confirm_alpha(&mut self, limits: &Limits) {
        let (Ok(probe), Some(body)) = (&mut self.verdict, &self.body) else { return };
        match has_transparency(body, probe, limits) {
            Ok(has_alpha) => probe.has_alpha = has_alpha,
            Err(rejected) => {
                self.verdict = Err(rejected);
                self.body = None;
            }
        }
    }
}

impl Examined {
    /// Decode the whole image once, as ingest does ([`catg_image::verify`]): the real alpha,
    /// and the summary (`None` if the decode failed, which rejects the source).
    pub fn verify(&mut self, limits: &Limits) -> Option<Summary> {
        let (Ok(probe), Some(body)) = (&mut self.verdict, &self.body) else { return None };
        match verify(body, probe, limits) {
            Ok(verified) => {
                probe.has_alpha = verified.has_alpha;
                verified.summary
            }
            Err(rejected) => {
                self.verdict = Err(rejected);
                self.body = None;
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use catg_image::RejectKind;

    #[test]
    fn non_images_are_fingerprinted_without_being_kept() {
        let data = vec![b'x'; 100_000];
        let examined = examine(&data[..], data.len() as u64, &Limits::default()).expect("read");
        assert_eq!(examined.fingerprint, Fingerprint::of(&data));
        assert_eq!(examined.bytes, 100_000);
        assert_eq!(examined.verdict.expect_err("rejected").reject_kind(), Some(RejectKind::NotAnImage));
        assert!(examined.body.is_none());
    }

    #[test]
    fn oversized_images_are_too_large_with_their_real_size() {
        let mut data = b"\x89PNG\r\n\x1a\n".to_vec();
        data.resize(10_000, 0);
        let limits = Limits { max_input_bytes: 5_000, ..Limits::default() };
        let examined = examine(&data[..], 0, &limits).expect("read");
        assert!(matches!(examined.verdict, Err(ImageError::TooLarge { bytes: 10_000, limit: 5_000 })));
        assert_eq!(examined.fingerprint, Fingerprint::of(&data));
    }
}
