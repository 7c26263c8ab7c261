//! Writes `tests/fixtures/iphone-style.heic`, the HEIC the tests upload: laid out as an iPhone
//! portrait photo is, so that what phones send is what the tests decode.
//!
//! - 960×1280 upright, stored as a 1280×960 landscape grid of 512×512 HEVC tiles (3×2, the last
//!   column and row cropped by the grid's size), with `irot` turning it upright and the EXIF
//!   orientation tag saying the same (6), as iPhones write both;
//! - colour in Display P3, with the profile embedded (`colr` of type `prof`);
//! - four blocks of known colour in the upright corners, whose sRGB values (computed here from the
//!   P3 values, independently of the pipeline's colour management) go to `iphone-style.json`.
//!
//! `cargo run -p catg-image --example iphone_style_heic -- tests/fixtures/iphone-style.heic`
//!
//! heifer encodes the tiles, the grid, the EXIF item and the profile; it writes no `irot` and sets
//! the EXIF orientation to 1, so both are patched in afterwards (`add_rotation`).

use lcms2::{CIExyY, CIExyYTRIPLE, Profile, ToneCurve};

const UPRIGHT: (u32, u32) = (960, 1280);
/// Upright corner blocks: name, P3 colour, top-left corner, size.
const BLOCKS: [(&str, [u8; 3], (u32, u32)); 4] = [
    ("top_left_red", [210, 60, 50], (40, 40)),
    ("top_right_green", [70, 190, 80], (720, 40)),
    ("bottom_left_blue", [50, 70, 200], (40, 1040)),
    ("bottom_right_yellow", [235, 215, 70], (720, 1040)),
];
const BLOCK: u32 = 200;

fn main() {
    let out = std::env::args().nth(1).unwrap_or_else(|| "tests/fixtures/iphone-style.heic".into());
    let (width, height) = UPRIGHT;
    // Upright pixels, then stored as the sensor saw them: turned a quarter anticlockwise, so
    // that a quarter turn clockwise (irot 3 = 270° anticlockwise, EXIF 6) makes them upright.
    // Between the blocks, gradients and fine stripes: detail for every tile's decoder to get right.
    let background = |x: u32, y: u32| -> [u8; 3] {
        let stripe = if (x / 3 + y / 5) % 2 == 0 { 24 } else { 0 };
        [(x * 200 / width) as u8 + stripe, (y * 200 / height) as u8 + stripe, ((x + y) % 256) as u8 / 2 + 64]
    };
    let upright = |x: u32, y: u32| -> [u8; 3] {
        BLOCKS
            .iter()
            .find(|(_, _, (bx, by))| x >= *bx && x < bx + BLOCK && y >= *by && y < by + BLOCK)
            .map_or_else(|| background(x, y), |(_, rgb, _)| *rgb)
    };
    let (stored_width, stored_height) = (height, width);
    let mut rgba = Vec::with_capacity((stored_width * stored_height * 4) as usize);
    for sy in 0..stored_height {
        for sx in 0..stored_width {
            // Stored (sx, sy) shows upright (width-1-sy, sx) after a clockwise quarter turn.
            let [r, g, b] = upright(width - 1 - sy, sx);
            rgba.extend_from_slice(&[r, g, b, 255]);
        }
    }
    let image = heifer::Image {
        width: stored_width,
        height: stored_height,
        bit_depth: 8,
        has_alpha: false,
        data: rgba.into_iter().map(u16::from).collect(),
    };
    let metadata =
        heifer::Metadata { exif: Some(exif_orientation_6()), xmp: None, icc_profile: Some(display_p3_profile()) };
    let encoded =
        heifer::encode_with_metadata(&image, &metadata, &heifer::EncodeOptions { quality: 75, max_threads: 0 })
            .expect("encode");
    let heic = add_rotation(&encoded);
    std::fs::write(&out, &heic).expect("write the HEIC");

    let probes: Vec<String> = BLOCKS
        .iter()
        .map(|(name, p3, (x, y))| {
            let [r, g, b] = p3_to_srgb(*p3);
            format!(
                "    {{\"name\": \"{name}\", \"x\": {}, \"y\": {}, \"p3\": {p3:?}, \"rgb\": [{r}, {g}, {b}]}}",
                x + BLOCK / 2,
                y + BLOCK / 2
            )
        })
        .collect();
    let manifest = format!(
        "{{\n  \"file\": \"iphone-style.heic\",\n  \"width\": {width},\n  \"height\": {height},\n  \"stored\": [{stored_width}, {stored_height}],\n  \"tolerance\": 10,\n  \"probes\": [\n{}\n  ]\n}}\n",
        probes.join(",\n")
    );
    std::fs::write(std::path::Path::new(&out).with_extension("json"), manifest).expect("write the manifest");
    eprintln!("wrote {out} ({} bytes) and its .json", heic.len());
}

/// A Display P3 profile: D65 white, the P3 primaries, the sRGB transfer curve.
fn display_p3_profile() -> Vec<u8> {
    let white = CIExyY { x: 0.3127, y: 0.3290, Y: 1.0 };
    let primaries = CIExyYTRIPLE {
        Red: CIExyY { x: 0.680, y: 0.320, Y: 1.0 },
        Green: CIExyY { x: 0.265, y: 0.690, Y: 1.0 },
        Blue: CIExyY { x: 0.150, y: 0.060, Y: 1.0 },
    };
    let curve =
        ToneCurve::new_parametric(4, &[2.4, 1.0 / 1.055, 0.055 / 1.055, 1.0 / 12.92, 0.04045]).expect("the sRGB curve");
    Profile::new_rgb(&white, &primaries, &[&curve, &curve, &curve]).expect("profile").icc().expect("ICC bytes")
}

/// P3 to sRGB by the textbook route (both D65, one transfer curve): linearise, the 3×3 matrix
/// between the two primaries, clip, encode.
fn p3_to_srgb(p3: [u8; 3]) -> [u8; 3] {
    let linear = |v: u8| {
        let v = f64::from(v) / 255.0;
        if v <= 0.04045 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    let encode = |v: f64| {
        let v = v.clamp(0.0, 1.0);
        let v = if v <= 0.0031308 { v * 12.92 } else { 1.055 * v.powf(1.0 / 2.4) - 0.055 };
        (v * 255.0).round() as u8
    };
    const P3_TO_SRGB: [[f64; 3]; 3] =
        [[1.224_940, -0.224_940, 0.0], [-0.042_057, 1.042_057, 0.0], [-0.019_638, -0.078_636, 1.098_274]];
    let l = p3.map(linear);
    P3_TO_SRGB.map(|row| encode(row[0] * l[0] + row[1] * l[1] + row[2] * l[2]))
}

/// A big-endian TIFF block with one IFD entry, Orientation = 6, as cameras write it.
fn exif_orientation_6() -> Vec<u8> {
    let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec();
    tiff.extend_from_slice(&1u16.to_be_bytes()); // one entry
    tiff.extend_from_slice(&[0x01, 0x12, 0x00, 0x03, 0, 0, 0, 1, 0x00, 0x06, 0, 0]);
    tiff.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    tiff
}

/// The primary item gets `irot` 3 (its property appended to `ipco`, associated in `ipma`), and
/// the EXIF orientation heifer reset to 1 is set back to 6. `meta` grows, so the file offsets in
/// `iloc` of everything after it move by as much.
fn add_rotation(file: &[u8]) -> Vec<u8> {
    let boxes = children(file);
    let (meta_at, meta) = boxes.iter().find(|(_, b)| b.kind == *b"meta").map(|(at, b)| (*at, b.clone())).expect("meta");
    let meta_header = &meta.body[..4]; // version and flags
    let mut meta_children = children(&meta.body[4..]).into_iter().map(|(_, b)| b).collect::<Vec<_>>();
    let primary = {
        let pitm = meta_children.iter().find(|b| b.kind == *b"pitm").expect("pitm");
        if pitm.body[0] == 0 {
            u32::from(u16::from_be_bytes([pitm.body[4], pitm.body[5]]))
        } else {
            u32::from_be_bytes(pitm.body[4..8].try_into().expect("4 bytes"))
        }
    };
    let iprp = meta_children.iter_mut().find(|b| b.kind == *b"iprp").expect("iprp");
    let mut iprp_children = children(&iprp.body).into_iter().map(|(_, b)| b).collect::<Vec<_>>();
    let ipco = iprp_children.iter_mut().find(|b| b.kind == *b"ipco").expect("ipco");
    let property_index = children(&ipco.body).len() as u16 + 1;
    ipco.body.extend_from_slice(&[0, 0, 0, 9, b'i', b'r', b'o', b't', 3]);
    let ipma = iprp_children.iter_mut().find(|b| b.kind == *b"ipma").expect("ipma");
    ipma.body = associate(&ipma.body, primary, property_index);
    iprp.body = iprp_children.iter().flat_map(Box_::bytes).collect();
    let mut new_meta_body = meta_header.to_vec();
    let old_meta_len = meta.bytes().len();
    let new_meta_len = 8 + 4 + meta_children.iter().map(|b| b.bytes().len()).sum::<usize>();
    let delta = (new_meta_len - old_meta_len) as u64;
    for child in &mut meta_children {
        if child.kind == *b"iloc" {
            shift_iloc(&mut child.body, meta_at as u64 + old_meta_len as u64, delta);
        }
        new_meta_body.extend_from_slice(&child.bytes());
    }
    let new_meta = Box_ { kind: *b"meta", body: new_meta_body };
    let mut out = Vec::new();
    for (_, b) in &boxes {
        out.extend_from_slice(&if b.kind == *b"meta" { new_meta.bytes() } else { b.bytes() });
    }
    // The EXIF orientation entry (tag 0x0112, SHORT, count 1), big-endian as written above.
    let entry = [0x01, 0x12, 0x00, 0x03, 0, 0, 0, 1, 0x00];
    let at = out.windows(entry.len()).position(|w| w == entry).expect("the EXIF orientation entry");
    out[at + entry.len()] = 6;
    out
}

#[derive(Clone)]
struct Box_ {
    kind: [u8; 4],
    body: Vec<u8>,
}

impl Box_ {
    fn bytes(&self) -> Vec<u8> {
        let mut out = ((self.body.len() + 8) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(&self.kind);
        out.extend_from_slice(&self.body);
        out
    }
}

/// The boxes in `data`, with their offsets (32-bit sizes only: what heifer writes).
fn children(data: &[u8]) -> Vec<(usize, Box_)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 8 <= data.len() {
        let size = u32::from_be_bytes(data[at..at + 4].try_into().expect("4 bytes")) as usize;
        assert!(size >= 8, "a box size heifer does not write");
        let kind = data[at + 4..at + 8].try_into().expect("4 bytes");
        out.push((at, Box_ { kind, body: data[at + 8..at + size].to_vec() }));
        at += size;
    }
    out
}

/// `ipma` with one more association, essential, for `item`.
fn associate(ipma: &[u8], item: u32, property: u16) -> Vec<u8> {
    let (version, wide_index) = (ipma[0], ipma[3] & 1 == 1);
    let mut out = ipma[..8].to_vec();
    let count = u32::from_be_bytes(ipma[4..8].try_into().expect("4 bytes"));
    let mut at = 8;
    for _ in 0..count {
        let id_len = if version < 1 { 2 } else { 4 };
        let id = ipma[at..at + id_len].iter().fold(0u32, |v, &b| v << 8 | u32::from(b));
        out.extend_from_slice(&ipma[at..at + id_len]);
        at += id_len;
        let associations = ipma[at];
        let entry_len = if wide_index { 2 } else { 1 };
        let existing = &ipma[at + 1..at + 1 + associations as usize * entry_len];
        at += 1 + existing.len();
        if id == item {
            out.push(associations + 1);
            out.extend_from_slice(existing);
            if wide_index {
                out.extend_from_slice(&(0x8000 | property).to_be_bytes());
            } else {
                out.push(0x80 | u8::try_from(property).expect("a 7-bit property index"));
            }
        } else {
            out.push(associations);
            out.extend_from_slice(existing);
        }
    }
    out
}

/// Move every file offset (construction method 0) at or past `from` by `delta`.
fn shift_iloc(iloc: &mut [u8], from: u64, delta: u64) {
    let version = iloc[0];
    let (offset_size, length_size) = (usize::from(iloc[4] >> 4), usize::from(iloc[4] & 15));
    let (base_size, index_size) = (usize::from(iloc[5] >> 4), if version >= 1 { usize::from(iloc[5] & 15) } else { 0 });
    let read = |b: &[u8]| b.iter().fold(0u64, |v, &x| v << 8 | u64::from(x));
    let write = |b: &mut [u8], v: u64| {
        let n = b.len();
        for (i, byte) in b.iter_mut().enumerate() {
            *byte = (v >> (8 * (n - 1 - i))) as u8;
        }
    };
    let mut at = 6;
    let count = if version < 2 {
        at += 2;
        read(&iloc[6..8])
    } else {
        at += 4;
        read(&iloc[6..10])
    };
    for _ in 0..count {
        at += if version < 2 { 2 } else { 4 };
        let method = if version >= 1 {
            at += 2;
            iloc[at - 1] & 15
        } else {
            0
        };
        at += 2; // data reference index
        let base = read(&iloc[at..at + base_size]);
        let base_at = at;
        at += base_size;
        let extents = read(&iloc[at..at + 2]);
        at += 2;
        let mut base_moved = false;
        for _ in 0..extents {
            at += index_size;
            let offset = read(&iloc[at..at + offset_size]);
            if method == 0 && base + offset >= from {
                if base_size > 0 && base > 0 {
                    if !base_moved {
                        write(&mut iloc[base_at..base_at + base_size], base + delta);
                        base_moved = true;
                    }
                } else {
                    write(&mut iloc[at..at + offset_size], offset + delta);
                }
            }
            at += offset_size + length_size;
        }
    }
}
