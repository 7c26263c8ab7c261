//! Output formats and their encoder settings.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputFormat {
    Jpeg,
    Png,
    Webp,
    Avif,
    /// JPEG XL: offered by `fmt=auto` only to clients that name it.
    Jxl,
    /// Palette GIF: for animations where WebP is not accepted.
    Gif,
}

impl OutputFormat {
    pub const ALL: [OutputFormat; 6] = [
        OutputFormat::Jpeg,
        OutputFormat::Png,
        OutputFormat::Webp,
        OutputFormat::Avif,
        OutputFormat::Jxl,
        OutputFormat::Gif,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpeg",
            OutputFormat::Png => "png",
            OutputFormat::Webp => "webp",
            OutputFormat::Avif => "avif",
            OutputFormat::Jxl => "jxl",
            OutputFormat::Gif => "gif",
        }
    }

    pub fn parse(s: &str) -> Option<OutputFormat> {
        OutputFormat::ALL.into_iter().find(|f| f.as_str() == s)
    }

    pub fn mime_type(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "image/jpeg",
            OutputFormat::Png => "image/png",
            OutputFormat::Webp => "image/webp",
            OutputFormat::Avif => "image/avif",
            OutputFormat::Jxl => "image/jxl",
            OutputFormat::Gif => "image/gif",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpg",
            other => other.as_str(),
        }
    }

    /// The quality used when a recipe gives none; `None` for lossless PNG, where it means nothing.
    /// AVIF's scale is libavif's, as sharp's is: catg's q51 matches sharp's AVIF q50 by DSSIM.
    /// JPEG XL's q82 looks as good as AVIF q51 by DSSIM (0.96× of it), at about its bytes.
    pub fn default_quality(self) -> Option<u8> {
        match self {
            OutputFormat::Jpeg | OutputFormat::Webp => Some(80),
            OutputFormat::Avif => Some(51),
            OutputFormat::Jxl => Some(82),
            OutputFormat::Png | OutputFormat::Gif => None,
        }
    }

    pub fn supports_alpha(self) -> bool {
        !matches!(self, OutputFormat::Jpeg)
    }

    /// The largest width or height the format can hold.
    pub fn max_dimension(self) -> u32 {
        match self {
            OutputFormat::Jpeg => 65_500,
            OutputFormat::Webp => 16_383,
            OutputFormat::Png | OutputFormat::Avif | OutputFormat::Jxl | OutputFormat::Gif => 65_535,
        }
    }

    /// Whether the format keeps every frame of an animation (AVIF sequences are not written).
    pub fn animates(self) -> bool {
        matches!(self, OutputFormat::Webp | OutputFormat::Gif)
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
