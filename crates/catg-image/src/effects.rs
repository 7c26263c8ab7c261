//! What a render does to the image besides fitting it: blur, sharpen, padding and the
//! background colour. Whole numbers throughout (sigmas in hundredths), so specs compare and
//! hash exactly.

/// A colour with alpha, `[r, g, b, a]`, straight (not premultiplied).
pub type Rgba = [u8; 4];

/// Padding around the result, in output pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Padding {
    pub top: u32,
    pub right: u32,
    pub bottom: u32,
    pub left: u32,
}

impl Padding {
    pub fn is_zero(self) -> bool {
        self == Padding::default()
    }

    /// A `width`×`height` image's size once padded (saturating: the output-pixel cap refuses it).
    pub fn around(self, (width, height): (u32, u32)) -> (u32, u32) {
        (
            width.saturating_add(self.left).saturating_add(self.right),
            height.saturating_add(self.top).saturating_add(self.bottom),
        )
    }
}

/// The finishing operations, applied in this order after the fit: blur, sharpen, padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Effects {
    /// Gaussian blur, sigma in hundredths of an output pixel.
    pub blur: Option<u16>,
    /// Unsharp mask, sigma in hundredths of an output pixel.
    pub sharpen: Option<u16>,
    pub padding: Padding,
    /// For letterboxing, padding and flattening transparency into JPEG. `None`: black for
    /// opaque images, transparent for images with alpha, white behind JPEG's transparency.
    pub background: Option<Rgba>,
}
