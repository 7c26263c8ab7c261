//! The first view of a variant still rendering: a request that will show the answer as an
//! image gets a blurred placeholder drawn from the asset's ThumbHash instead of JSON, so a page
//! never shows a broken image. API clients keep the JSON body.

use base64::Engine;
use catg_image::OutputFormat;

/// A placeholder's bytes and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholder {
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

/// How a waiting request's placeholder is spelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaceholderKind {
    /// An SVG of the variant's own size around a tiny PNG: the page lays out as it will with
    /// the variant (a raster placeholder's size would be its own 32 pixels).
    Svg,
    Raster(OutputFormat),
}

/// Whether the request shows its answer as an image, and in what. `Sec-Fetch-Dest: image` is
/// an `<img>` (or CSS image) in a browser, and every browser that sends it draws SVG there;
/// otherwise an `Accept` naming an image type says so (`*/*` alone does not: curl, API clients).
pub fn choose(accept: Option<&str>, fetch_dest: Option<&str>) -> Option<PlaceholderKind> {
    if fetch_dest.is_some_and(|dest| dest.trim().eq_ignore_ascii_case("image")) {
        return Some(PlaceholderKind::Svg);
    }
    let accept = accept?;
    let named = |mime: &str| crate::negotiate::accepts_explicitly(accept, mime);
    if named("image/svg+xml") {
        Some(PlaceholderKind::Svg)
    } else if named("image/webp") {
        Some(PlaceholderKind::Raster(OutputFormat::Webp))
    } else if named("image/png") || named("image/*") {
        Some(PlaceholderKind::Raster(OutputFormat::Png))
    } else if named("image/jpeg") {
        Some(PlaceholderKind::Raster(OutputFormat::Jpeg))
    } else if named("image/avif") {
        Some(PlaceholderKind::Raster(OutputFormat::Avif))
    } else if named("image/jxl") {
        Some(PlaceholderKind::Raster(OutputFormat::Jxl))
    } else {
        None
    }
}

/// The placeholder for a variant of `size` pixels, from the asset's ThumbHash.
pub fn render(
    thumbhash: &[u8],
    size: (u32, u32),
    kind: PlaceholderKind,
) -> Result<Placeholder, catg_image::ImageError> {
    match kind {
        PlaceholderKind::Raster(format) => Ok(Placeholder {
            content_type: format.mime_type(),
            body: catg_image::placeholder(thumbhash, size, format)?,
        }),
        PlaceholderKind::Svg => {
            let png = catg_image::placeholder(thumbhash, size, OutputFormat::Png)?;
            let (w, h) = catg_image::placeholder_size(size.0, size.1);
            let data = base64::engine::general_purpose::STANDARD.encode(png);
            let svg = format!(
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {w} {h}\" \
                 preserveAspectRatio=\"none\"><image width=\"{w}\" height=\"{h}\" preserveAspectRatio=\"none\" \
                 href=\"data:image/png;base64,{data}\"/></svg>",
                size.0.max(1),
                size.1.max(1)
            );
            Ok(Placeholder { content_type: "image/svg+xml", body: svg.into_bytes() })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME: &str = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";

    #[test]
    fn images_get_placeholders_and_api_clients_do_not() {
        assert_eq!(choose(None, Some("image")), Some(PlaceholderKind::Svg));
        assert_eq!(choose(Some(CHROME), None), Some(PlaceholderKind::Svg));
        assert_eq!(choose(Some("image/webp"), None), Some(PlaceholderKind::Raster(OutputFormat::Webp)));
        assert_eq!(choose(Some("image/*"), None), Some(PlaceholderKind::Raster(OutputFormat::Png)));
        assert_eq!(choose(Some("image/jpeg"), None), Some(PlaceholderKind::Raster(OutputFormat::Jpeg)));
        assert_eq!(choose(Some("image/avif"), Some("empty")), Some(PlaceholderKind::Raster(OutputFormat::Avif)));
        assert_eq!(choose(Some("*/*"), None), None);
        assert_eq!(choose(Some("application/json"), Some("empty")), None);
        assert_eq!(choose(Some("image/webp;q=0"), None), None);
        assert_eq!(choose(None, None), None);
    }

    #[test]
    fn the_svg_has_the_variants_size_around_a_png() {
        let rgba: Vec<u8> = std::iter::repeat_n([10u8, 200, 10, 255], 40 * 30).flatten().collect();
        let pixels =
            catg_image::pixels::Pixels::from_vec(40, 30, catg_image::pixels::Layout::Rgba8, rgba).expect("size");
        let hash = catg_image::summary::summarise(&pixels).expect("summary").thumbhash;
        let svg = render(&hash, (800, 600), PlaceholderKind::Svg).expect("renders");
        assert_eq!(svg.content_type, "image/svg+xml");
        let text = String::from_utf8(svg.body).expect("text");
        assert!(text.starts_with("<svg ") && text.contains("width=\"800\" height=\"600\""), "{text}");
        assert!(text.contains("viewBox=\"0 0 32 24\"") && text.contains("data:image/png;base64,iVBORw0KGgo"), "{text}");
    }
}
