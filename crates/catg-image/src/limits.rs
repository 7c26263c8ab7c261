//! Resource limits, checked against the header *before* any large allocation.

/// Every bound the pipeline enforces. Defaults suit a 1–2 GB Lambda or a small server; each is
/// configurable (see README "Limits").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest input accepted, in bytes.
    pub max_input_bytes: u64,
    /// Largest decoded frame (canvas) in pixels, stored width × height.
    pub max_pixels: u64,
    /// Most frames (animation frames, TIFF pages) an input may declare.
    pub max_frames: u32,
    /// Most scans a progressive JPEG may have. Each scan re-walks the whole coefficient buffer,
    /// so thousands of tiny scans are a CPU bomb in a small file.
    pub max_jpeg_scans: u32,
    /// Largest embedded ICC profile, in bytes. Larger profiles are refused rather than parsed.
    pub max_icc_bytes: usize,
    /// Largest output (variant) in pixels.
    pub max_output_pixels: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_input_bytes: 128 * 1024 * 1024,
            max_pixels: 100_000_000,
            max_frames: 1_000,
            max_jpeg_scans: 256,
            max_icc_bytes: 4 * 1024 * 1024,
            max_output_pixels: 100_000_000,
        }
    }
}
