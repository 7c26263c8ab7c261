//! The engine: runs a list of transforms on a decode, streaming as far as the list allows.
//!
//! From a whole frame, each transform runs on the frame in turn. From rows, the leading
//! [`Reach::Row`] transforms convert each band as it is decoded, and the first
//! [`Reach::Window`] transform takes the bands and gives its whole output (for the resize, the
//! output-sized frame): the full-size frame never exists. Whatever follows runs on that frame.
//! If no windowed transform comes before a [`Reach::Frame`] one, the rows are gathered into the
//! frame first (which the memory estimate then counts, see [`streams_to_window`]).

use crate::decode::Source;
use crate::error::{ImageError, Result};
use crate::frame::{Context, Frame, Header, Rows, WindowOp, BAND_ROWS};
use crate::limits::Deadline;
use crate::pixels::{any_transparent, Layout, Pixels};
use crate::transform::{Reach, Transform};

/// Run `transforms`, in order, on what `source` decodes.
pub(crate) fn run(
    source: Source<'_>,
    transforms: &[Transform],
    ctx: &Context<'_>,
    deadline: &Deadline,
) -> Result<Frame> {
    let (mut frame, rest) = match source {
        Source::Frame(frame) => {
            deadline.check("decode")?;
            (frame, transforms)
        }
        Source::Rows(rows, header) => stream(rows, header, transforms, ctx, deadline)?,
    };
    for step in rest {
        frame = step.apply(frame, ctx)?;
        deadline.check(step.name())?;
    }
    Ok(frame)
}

/// Whether rows reach a windowed transform before anything needs the whole frame: then a
/// streamed decode holds a window of rows, never the frame.
pub(crate) fn streams_to_window(transforms: &[Transform]) -> bool {
    transforms.iter().find(|t| t.reach() != Reach::Row).is_some_and(|t| t.reach() == Reach::Window)
}

/// Stream `rows` through the leading row transforms into the first windowed one; returns its
/// output as a frame and the transforms still to run.
fn stream<'t>(
    mut rows: Box<dyn Rows + '_>,
    mut header: Header,
    transforms: &'t [Transform],
    ctx: &Context<'_>,
    deadline: &Deadline,
) -> Result<(Frame, &'t [Transform])> {
    let (size, source_layout) = (rows.size(), rows.layout());
    let row_steps = transforms.iter().take_while(|t| t.reach() == Reach::Row).count();
    let mut layout = source_layout;
    let mut ops = Vec::with_capacity(row_steps);
    for step in &transforms[..row_steps] {
        let op = step.row_op(layout, &mut header)?;
        layout = op.layout();
        ops.push(op);
    }
    let window = transforms.get(row_steps).filter(|t| t.reach() == Reach::Window);
    let mut sink: Box<dyn WindowOp> = match window {
        Some(step) => step.window_op(size, layout, &header, ctx)?,
        None => Box::new(Gather::start(size, layout)?),
    };
    let needed = sink.needed();
    let row_bytes = rows.row_bytes();
    let mut band = vec![0u8; BAND_ROWS * row_bytes];
    let (mut scratch, mut next) = (Vec::new(), Vec::new());
    let mut transparent = false;
    loop {
        let first = rows.row();
        let count = rows.read(&mut band)?;
        if count == 0 {
            break;
        }
        // Over every decoded row, cropped-away ones included, as a whole-frame decode sees them.
        if source_layout == Layout::Rgba8 && !transparent {
            transparent = any_transparent(&band[..count as usize * row_bytes]);
        }
        // Rows no output row reaches (above or below a crop) are decoded, not converted or kept.
        let (lo, hi) = (first.max(needed.0), (first + count).min(needed.1));
        if lo < hi {
            let kept = &band[(lo - first) as usize * row_bytes..(hi - first) as usize * row_bytes];
            convert(&ops, kept, sink.buffer(), &mut scratch, &mut next);
            sink.rows_added()?;
        }
        deadline.check("decode")?;
    }
    let pixels = sink.finish(transparent)?;
    let rest = &transforms[row_steps + usize::from(window.is_some())..];
    Ok((Frame::from_parts(pixels, header), rest))
}

/// Run `rows` through every row op, the last one appending to `out` (one op, the usual case,
/// writes straight into the window).
fn convert(
    ops: &[Box<dyn crate::frame::RowOp>],
    rows: &[u8],
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
    next: &mut Vec<u8>,
) {
    let Some((last, leading)) = ops.split_last() else {
        out.extend_from_slice(rows);
        return;
    };
    if leading.is_empty() {
        last.append(rows, out);
        return;
    }
    scratch.clear();
    scratch.extend_from_slice(rows);
    for op in leading {
        next.clear();
        op.append(scratch, next);
        std::mem::swap(scratch, next);
    }
    last.append(scratch, out);
}

/// Rows gathered into a frame, for a row source whose next transform needs the whole frame.
struct Gather {
    size: (u32, u32),
    layout: Layout,
    data: Vec<u8>,
}

impl Gather {
    fn start(size: (u32, u32), layout: Layout) -> Result<Gather> {
        let bytes = size.0 as usize * size.1 as usize * layout.channels();
        let mut data = Vec::new();
        data.try_reserve_exact(bytes)
            .map_err(|_| ImageError::ResourceLimit(format!("cannot allocate a {}x{} frame", size.0, size.1)))?;
        Ok(Gather { size, layout, data })
    }
}

impl WindowOp for Gather {
    fn needed(&self) -> (u32, u32) {
        (0, self.size.1)
    }

    fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.data
    }

    fn rows_added(&mut self) -> Result<()> {
        Ok(())
    }

    fn finish(self: Box<Self>, transparent: bool) -> Result<Pixels> {
        let pixels = Pixels::from_vec(self.size.0, self.size.1, self.layout, self.data)?;
        Ok(if transparent { pixels } else { pixels.drop_opaque_alpha() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::{plan, Fit, Resize};
    use crate::limits::Limits;
    use crate::probe::Orientation;
    use crate::transform::TRANSFORMS;

    /// Rows of a frame already in memory, handed out a band at a time as a decoder would.
    struct PixelRows {
        pixels: Pixels,
        row: u32,
    }

    impl Rows for PixelRows {
        fn size(&self) -> (u32, u32) {
            (self.pixels.width, self.pixels.height)
        }
        fn layout(&self) -> Layout {
            self.pixels.layout
        }
        fn row(&self) -> u32 {
            self.row
        }
        fn read(&mut self, band: &mut [u8]) -> Result<u32> {
            let row_bytes = self.row_bytes();
            let count = ((band.len() / row_bytes) as u32).min(self.pixels.height - self.row);
            let at = self.row as usize * row_bytes;
            band[..count as usize * row_bytes].copy_from_slice(&self.pixels.data[at..at + count as usize * row_bytes]);
            self.row += count;
            Ok(count)
        }
    }

    /// A smooth, asymmetric image (every quadrant differs); with alpha, a transparent corner.
    fn gradient(width: u32, height: u32, layout: Layout) -> Pixels {
        let channels = layout.channels();
        let data = (0..height)
            .flat_map(|y| (0..width).map(move |x| (x, y)))
            .flat_map(|(x, y)| {
                let alpha = if x < width / 5 && y < height / 5 { 0 } else { 255 };
                [(x * 255 / width) as u8, (y * 255 / height) as u8, 90, alpha].into_iter().take(channels)
            })
            .collect();
        Pixels::from_vec(width, height, layout, data).expect("size")
    }

    fn wide_gamut_profile() -> Vec<u8> {
        let primary = |x, y| lcms2::CIExyY { x, y, Y: 1.0 };
        let curve = lcms2::ToneCurve::new(2.2);
        lcms2::Profile::new_rgb(
            &primary(0.3127, 0.329),
            &lcms2::CIExyYTRIPLE {
                Red: primary(0.708, 0.292),
                Green: primary(0.170, 0.797),
                Blue: primary(0.131, 0.046),
            },
            &[&curve, &curve, &curve],
        )
        .expect("profile")
        .icc()
        .expect("icc bytes")
    }

    /// Every transform, alone and in the pipeline's list, gives the same frame from rows as from
    /// the whole frame: a new transform is proved on both paths by being in `Transform::ALL`.
    #[test]
    fn every_transform_gives_the_same_frame_from_rows_and_from_the_whole_frame() {
        let deadline = Deadline::start(&Limits::default());
        let mut lists: Vec<Vec<Transform>> = Transform::ALL.iter().map(|t| vec![*t]).collect();
        lists.push(TRANSFORMS.to_vec());
        let mut compared = 0;
        for layout in [Layout::Rgb8, Layout::Rgba8] {
            for orientation in [Orientation::Normal, Orientation::Rotate90, Orientation::Transverse] {
                for icc in [None, Some(wide_gamut_profile())] {
                    let stored = gradient(90, 61, layout);
                    let header = Header { orientation, icc, cmyk_inverted: false };
                    let upright = if orientation.swaps_axes() { (61, 90) } else { (90, 61) };
                    for fit in [Fit::Cover, Fit::Contain] {
                        let resize =
                            Resize { width: Some(31), height: Some(23), fit, enlarge: false, ..Resize::default() };
                        let geometry = plan(upright.0, upright.1, &resize, u64::MAX).expect("plan");
                        // Every effect on, so each transform in the list does something.
                        let effects = crate::Effects {
                            blur: Some(120),
                            sharpen: Some(80),
                            padding: crate::Padding { top: 1, right: 2, bottom: 3, left: 4 },
                            background: Some([10, 20, 30, 128]),
                        };
                        let ctx = Context { geometry: &geometry, oriented_size: upright, effects: &effects };
                        for list in &lists {
                            let rows =
                                Source::Rows(Box::new(PixelRows { pixels: stored.clone(), row: 0 }), header.clone());
                            let whole =
                                Source::Frame(Frame::from_parts(stored.clone().drop_opaque_alpha(), header.clone()));
                            let a = run(rows, list, &ctx, &deadline).expect("from rows");
                            let b = run(whole, list, &ctx, &deadline).expect("from the frame");
                            let what = format!("{list:?} {layout:?} {orientation:?} {fit:?}");
                            assert_eq!(
                                (a.orientation, &a.icc, a.cmyk_inverted),
                                (b.orientation, &b.icc, b.cmyk_inverted),
                                "{what}"
                            );
                            let (a, b) = (a.pixels, b.pixels);
                            assert_eq!((a.width, a.height, a.layout), (b.width, b.height, b.layout), "{what}");
                            let worst = a.data.iter().zip(&b.data).map(|(x, y)| x.abs_diff(*y)).max().unwrap_or(0);
                            assert!(worst <= 2, "{what}: rows and whole frame differ by {worst}");
                            compared += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(compared, 2 * 3 * 2 * 2 * (Transform::ALL.len() + 1));
    }

    #[test]
    fn rows_stream_to_the_resize_and_the_memory_estimate_says_so() {
        assert!(streams_to_window(&TRANSFORMS));
        assert!(!streams_to_window(&[Transform::Colour, Transform::Orient, Transform::Resize]));
        assert!(!streams_to_window(&[Transform::Colour, Transform::Blur, Transform::Resize]));
    }
}
