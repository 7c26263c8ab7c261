//! `fmt=auto`: pick a concrete output format from the request's `Accept` header.

use catg_image::OutputFormat;

/// JPEG XL if the client names it, else AVIF, else WebP (the newer formats need fewer bytes at
/// equal quality; JPEG XL and AVIF about the same), else JPEG — or PNG when the image has
/// transparency, which JPEG cannot carry. Only
/// explicit types count: `*/*` (curl, old clients) and `image/*` get the safe formats.
pub fn negotiate(accept: Option<&str>, has_alpha: bool) -> OutputFormat {
    let accepts = |mime: &str| accept.is_some_and(|header| accepts_explicitly(header, mime));
    if accepts("image/jxl") {
        OutputFormat::Jxl
    } else if accepts("image/avif") {
        OutputFormat::Avif
    } else if accepts("image/webp") {
        OutputFormat::Webp
    } else if has_alpha {
        OutputFormat::Png
    } else {
        OutputFormat::Jpeg
    }
}

/// For an animation kept animated: WebP if the client names it, else GIF (what every client
/// shows). AVIF is never picked: catg does not write AVIF sequences.
pub fn negotiate_animation(accept: Option<&str>) -> OutputFormat {
    if accept.is_some_and(|header| accepts_explicitly(header, "image/webp")) {
        OutputFormat::Webp
    } else {
        OutputFormat::Gif
    }
}

/// True if `header` lists `mime` with a non-zero quality.
pub(crate) fn accepts_explicitly(header: &str, mime: &str) -> bool {
    header.split(',').any(|range| {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim();
        if !media.eq_ignore_ascii_case(mime) {
            return false;
        }
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")))
            .map(|q| q.trim().parse::<f32>().unwrap_or(1.0))
            .next()
            .unwrap_or(1.0);
        q > 0.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME: &str = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
    const SAFARI_15: &str = "image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5";
    const SAFARI_17: &str = "image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,\
                             image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5";

    #[test]
    fn prefers_jxl_then_avif_then_webp_then_jpeg_or_png() {
        assert_eq!(negotiate(Some(SAFARI_17), false), OutputFormat::Jxl);
        assert_eq!(negotiate(Some("image/jxl;q=0,image/avif"), true), OutputFormat::Avif);
        assert_eq!(negotiate(Some(CHROME), false), OutputFormat::Avif);
        assert_eq!(negotiate(Some(SAFARI_15), true), OutputFormat::Webp);
        assert_eq!(negotiate(Some("*/*"), false), OutputFormat::Jpeg);
        assert_eq!(negotiate(Some("image/*"), true), OutputFormat::Png);
        assert_eq!(negotiate(None, false), OutputFormat::Jpeg);
        assert_eq!(negotiate(None, true), OutputFormat::Png);
    }

    #[test]
    fn honours_q_zero_and_case() {
        assert_eq!(negotiate(Some("image/avif;q=0, image/webp"), false), OutputFormat::Webp);
        assert_eq!(negotiate(Some("IMAGE/AVIF ; q=0.5"), false), OutputFormat::Avif);
        assert_eq!(negotiate(Some("image/webp;q=0.0"), true), OutputFormat::Png);
    }
}
