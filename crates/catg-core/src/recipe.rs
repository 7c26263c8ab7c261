//! Recipes: what a variant is, parsed strictly from a URL query string, and its canonical form.
//!
//! Every spelling of the same request (aliases, parameter order, defaults left out or written
//! out, `fmt=auto` resolved to what the client accepts) maps to one canonical string, and so to
//! one cache key: junk in a URL cannot multiply variants.

use crate::negotiate::{negotiate, negotiate_animation};
use catg_image::{
    Anchor, Crop, Effects, Fit, FocalPoint, Gravity, Orientation, OutputFormat, Padding, RenderSpec, Resize, Rgba,
};
use percent_encoding::percent_decode_str;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// What may be asked for. Defaults: sides up to 8192 px, any size, queries up to 512 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipeLimits {
    pub max_width: u32,
    pub max_height: u32,
    /// When set, `w` and `h` must each be one of these: the cheap way to cap how many variants
    /// of one image anybody can make.
    pub allowed_sizes: Option<BTreeSet<u32>>,
    pub max_query_len: usize,
    /// Named recipes the operator configured (`preset=NAME`): name → recipe query.
    pub presets: BTreeMap<String, String>,
    /// Only presets may be asked for.
    pub presets_only: bool,
    /// Other parameters may be given beside a preset, overriding its own.
    pub presets_mix: bool,
}

impl Default for RecipeLimits {
    fn default() -> Self {
        RecipeLimits {
            max_width: 8192,
            max_height: 8192,
            allowed_sizes: None,
            max_query_len: 512,
            presets: BTreeMap::new(),
            presets_only: false,
            presets_mix: false,
        }
    }
}

/// `fmt` as requested: a concrete format or `auto` (negotiated from `Accept`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FormatChoice {
    #[default]
    Auto,
    Fixed(OutputFormat),
}

/// A parsed, validated recipe, before `fmt=auto` is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Recipe {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fit: Fit,
    pub format: FormatChoice,
    pub quality: Option<u8>,
    pub enlarge: bool,
    /// Where `cover` keeps the image (`g`); a focal point (`fp`) overrides it.
    pub gravity: Gravity,
    /// `g=smart`: keep what a viewer looks at (found in the pixels).
    pub smart: bool,
    pub focal: Option<FocalPoint>,
    /// `rot` (clockwise, after EXIF orientation), then `flip`.
    pub rotate: Orientation,
    pub flip: Orientation,
    /// `crop`, in the image as EXIF orientation leaves it, as asked (clamped on resolving).
    pub crop: Option<Crop>,
    /// `blur`, `sharpen` (sigmas in hundredths), `pad` (after `dpr`) and `bg`, as asked.
    pub effects: Effects,
    /// `frames=1`: the first frame of an animation only, even in a format that animates.
    pub first_frame: bool,
    /// `progressive=1`: a progressive JPEG.
    pub progressive: bool,
}

/// A recipe with everything decided: the thing a cache key names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResolvedRecipe {
    pub resize: Resize,
    pub effects: Effects,
    pub format: OutputFormat,
    /// `None` only for PNG and GIF.
    pub quality: Option<u8>,
    /// Only the first frame of an animated source, in a format that animates (`frames=1`); never
    /// set where it would change nothing.
    pub first_frame: bool,
    /// A progressive JPEG; never set for other formats.
    pub progressive: bool,
}

/// An invalid recipe. The message names the parameter and says what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RecipeError(String);

impl RecipeError {
    pub fn new(message: impl Into<String>) -> RecipeError {
        RecipeError(message.into())
    }

    pub fn message(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Param {
    Width,
    Height,
    Fit,
    Format,
    Quality,
    Enlarge,
    Gravity,
    Focal,
    Rotate,
    Flip,
    Crop,
    Dpr,
    Blur,
    Sharpen,
    Pad,
    Background,
    Frames,
    Progressive,
    Preset,
}

impl Param {
    fn from_name(name: &str) -> Option<Param> {
        Some(match name {
            "w" | "width" => Param::Width,
            "h" | "height" => Param::Height,
            "fit" => Param::Fit,
            "fmt" | "format" => Param::Format,
            "q" | "quality" => Param::Quality,
            "enlarge" => Param::Enlarge,
            "g" | "gravity" => Param::Gravity,
            "fp" => Param::Focal,
            "rot" => Param::Rotate,
            "flip" => Param::Flip,
            "crop" => Param::Crop,
            "dpr" => Param::Dpr,
            "blur" => Param::Blur,
            "sharpen" => Param::Sharpen,
            "pad" => Param::Pad,
            "bg" | "background" => Param::Background,
            "frames" => Param::Frames,
            "progressive" => Param::Progressive,
            "preset" => Param::Preset,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Param::Width => "w",
            Param::Height => "h",
            Param::Fit => "fit",
            Param::Format => "fmt",
            Param::Quality => "q",
            Param::Enlarge => "enlarge",
            Param::Gravity => "g",
            Param::Focal => "fp",
            Param::Rotate => "rot",
            Param::Flip => "flip",
            Param::Crop => "crop",
            Param::Dpr => "dpr",
            Param::Blur => "blur",
            Param::Sharpen => "sharpen",
            Param::Pad => "pad",
            Param::Background => "bg",
            Param::Frames => "frames",
            Param::Progressive => "progressive",
            Param::Preset => "preset",
        }
    }
}

/// Quote user input in an error message: bounded, and with control characters escaped so
/// that it cannot forge log lines.
fn shown(s: &str) -> String {
    let cut: String = s.chars().take(32).collect();
    let more = if cut.len() < s.len() { "…" } else { "" };
    format!("{:?}{more}", cut)
}

fn invalid(message: String) -> RecipeError {
    RecipeError(message)
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, then `%XX`.
fn form_decode(raw: &str) -> Result<String, RecipeError> {
    let spaced = raw.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| invalid(format!("{} is not valid UTF-8 once decoded", shown(raw))))
}

impl Recipe {
    /// The recipe as a signature covers it: every parameter the request gave, in a fixed order
    /// under its short name, before any negotiation (`fmt=auto` stays `auto`).
    /// `w=400&h=-&fit=cover&fmt=auto&q=-&enlarge=0`; a gravity or focal point, when given, follows
    /// (so URLs signed before they existed keep their signatures).
    pub fn signed_form(&self) -> String {
        let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
        let format = match self.format {
            FormatChoice::Auto => "auto".to_string(),
            FormatChoice::Fixed(f) => f.to_string(),
        };
        format!(
            "w={}&h={}&fit={}&fmt={format}&q={}&enlarge={}",
            or_dash(self.width.map(|w| w.to_string())),
            or_dash(self.height.map(|h| h.to_string())),
            self.fit.as_str(),
            or_dash(self.quality.map(|q| q.to_string())),
            u8::from(self.enlarge)
        ) + &self.anchor_suffix()
    }

    /// `&g=…` and `&fp=…` for what was given, in that order.
    fn anchor_suffix(&self) -> String {
        let mut out = String::new();
        if self.smart {
            out += "&g=smart";
        } else if self.gravity != Gravity::Centre {
            out += &format!("&g={}", self.gravity.as_str());
        }
        if let Some(point) = self.focal {
            out += &format!("&fp={}", focal_text(point));
        }
        if self.rotate != Orientation::Normal {
            out += &format!("&rot={}", rotation_degrees(self.rotate));
        }
        if let Some((name, _)) = FLIPS.iter().find(|(_, o)| *o == self.flip) {
            out += &format!("&flip={name}");
        }
        if let Some(crop) = self.crop {
            out += &format!("&crop={}", crop_text(crop));
        }
        out + &effects_text(&self.effects)
            + if self.first_frame { "&frames=1" } else { "" }
            + if self.progressive { "&progressive=1" } else { "" }
    }

    /// Parse a query string (with or without its leading `?`). A `preset` expands to the
    /// operator's recipe first; the limits, allowed sizes and `dpr` apply to the result.
    pub fn parse(query: &str, limits: &RecipeLimits) -> Result<Recipe, RecipeError> {
        let pairs = Recipe::pairs(query, limits)?;
        let preset = pairs.iter().find(|(param, _)| *param == Param::Preset).map(|(_, name)| name.as_str());
        let base = match preset {
            None if limits.presets_only => {
                return Err(invalid(format!(
                    "only presets are served here: give preset=NAME ({})",
                    preset_names(limits)
                )))
            }
            None => Recipe::default(),
            Some(_) if pairs.len() > 1 && !limits.presets_mix => {
                return Err(invalid("`preset` cannot be combined with other parameters here".into()))
            }
            Some(name) => {
                let text = limits
                    .presets
                    .get(name)
                    .ok_or_else(|| invalid(format!("unknown preset {}; {}", shown(name), preset_names(limits))))?;
                let inner = Recipe::pairs(text, limits)?;
                if inner.iter().any(|(param, _)| *param == Param::Preset) {
                    return Err(invalid(format!("preset {} names another preset", shown(name))));
                }
                Recipe::build(Recipe::default(), &inner, limits)?
            }
        };
        Recipe::build(base, &pairs, limits)
    }

    /// `base` with `pairs` set on it, then `dpr` applied and the sizes checked.
    fn build(base: Recipe, pairs: &[(Param, String)], limits: &RecipeLimits) -> Result<Recipe, RecipeError> {
        let mut recipe = base;
        let mut dpr = ONE_DPR;
        for (param, value) in pairs {
            match param {
                Param::Dpr => dpr = device_pixel_ratio(value)?,
                Param::Preset => {}
                _ => recipe.set(*param, value)?,
            }
        }
        // Limits and allowed sizes hold for the pixels asked for, after the ratio.
        recipe.width =
            recipe.width.map(|w| scaled(w, dpr)).map(|w| pixels(Param::Width, w, dpr, limits)).transpose()?;
        recipe.height =
            recipe.height.map(|h| scaled(h, dpr)).map(|h| pixels(Param::Height, h, dpr, limits)).transpose()?;
        let Padding { top, right, bottom, left } = recipe.effects.padding;
        let padding = [top, right, bottom, left].map(|side| scaled(side, dpr));
        if let Some(side) = padding.iter().find(|side| **side > limits.max_width.max(limits.max_height)) {
            return Err(invalid(format!(
                "`pad` must be at most {} pixels a side, got {side}",
                limits.max_width.max(limits.max_height)
            )));
        }
        let [top, right, bottom, left] = padding;
        recipe.effects.padding = Padding { top, right, bottom, left };
        Ok(recipe)
    }

    /// The query's parameters, decoded and named, each at most once.
    fn pairs(query: &str, limits: &RecipeLimits) -> Result<Vec<(Param, String)>, RecipeError> {
        let query = query.strip_prefix('?').unwrap_or(query);
        if query.len() > limits.max_query_len {
            return Err(invalid(format!(
                "the recipe is {} bytes, over the limit of {}",
                query.len(),
                limits.max_query_len
            )));
        }
        if query.is_empty() {
            return Ok(Vec::new());
        }
        let mut seen: Vec<(Param, String)> = Vec::new();
        let mut pairs = Vec::new();
        for (index, piece) in query.split('&').enumerate() {
            if piece.is_empty() {
                return Err(invalid(format!("parameter {} is empty (a stray '&')", index + 1)));
            }
            let (raw_name, raw_value) = piece
                .split_once('=')
                .ok_or_else(|| invalid(format!("parameter {} has no value (expected name=value)", shown(piece))))?;
            let name = form_decode(raw_name)?;
            let value = form_decode(raw_value)?;
            let param = Param::from_name(&name).ok_or_else(|| {
                invalid(format!(
                    "unknown parameter {}; expected w (width), h (height), fit, fmt (format), q (quality), enlarge, g (gravity), fp, rot, flip, crop, dpr, blur, sharpen, pad, bg or preset",
                    shown(&name)
                ))
            })?;
            if let Some((_, first)) = seen.iter().find(|(p, _)| *p == param) {
                let how = if *first == name {
                    format!("{} is given twice", shown(&name))
                } else {
                    format!("{} and {} are the same parameter", shown(first), shown(&name))
                };
                return Err(invalid(format!("{how}; give `{}` once", param.name())));
            }
            seen.push((param, name));
            pairs.push((param, value));
        }
        Ok(pairs)
    }

    fn set(&mut self, param: Param, value: &str) -> Result<(), RecipeError> {
        match param {
            Param::Width => self.width = Some(number(param, value)?),
            Param::Height => self.height = Some(number(param, value)?),
            Param::Fit => {
                self.fit = Fit::parse(value).ok_or_else(|| {
                    invalid(format!("`fit` must be cover, contain, fill, inside or outside, got {}", shown(value)))
                })?
            }
            Param::Format => {
                self.format = match value {
                    "auto" => FormatChoice::Auto,
                    "jpg" => FormatChoice::Fixed(OutputFormat::Jpeg),
                    other => FormatChoice::Fixed(OutputFormat::parse(other).ok_or_else(|| {
                        invalid(format!("`fmt` must be jpeg, png, webp, avif, jxl, gif or auto, got {}", shown(value)))
                    })?),
                }
            }
            Param::Quality => {
                let q = number(param, value)?;
                if !(1..=100).contains(&q) {
                    return Err(invalid(format!("`q` must be between 1 and 100, got {q}")));
                }
                self.quality = Some(q as u8);
            }
            Param::Enlarge => {
                self.enlarge = match value {
                    "0" => false,
                    "1" => true,
                    _ => return Err(invalid(format!("`enlarge` must be 0 or 1, got {}", shown(value)))),
                }
            }
            Param::Gravity => {
                self.smart = value == SMART;
                if !self.smart {
                    self.gravity = Gravity::parse(value).ok_or_else(|| {
                        invalid(format!(
                            "`g` must be one of c, n, ne, e, se, s, sw, w, nw, smart, got {}",
                            shown(value)
                        ))
                    })?
                }
            }
            Param::Focal => self.focal = Some(focal_point(value)?),
            Param::Rotate => {
                let rotate = ROTATIONS.iter().find(|(degrees, _)| *degrees == value).map(|(_, o)| *o);
                self.rotate = rotate.ok_or_else(|| {
                    invalid(format!("`rot` must be 0, 90, 180 or 270 (degrees clockwise), got {}", shown(value)))
                })?
            }
            Param::Flip => {
                let flip = FLIPS.iter().find(|(name, _)| *name == value).map(|(_, o)| *o);
                self.flip = flip.ok_or_else(|| invalid(format!("`flip` must be h, v or hv, got {}", shown(value))))?
            }
            Param::Crop => self.crop = Some(crop(value)?),
            Param::Dpr | Param::Preset => {
                return Err(invalid(format!("`{}` is applied when the recipe is read", param.name())))
            }
            Param::Blur => self.effects.blur = Some(sigma(param, value, 30, 10_000)?),
            Param::Sharpen => self.effects.sharpen = Some(sigma(param, value, 30, 1_000)?),
            Param::Pad => self.effects.padding = padding(value)?,
            Param::Background => self.effects.background = Some(colour(value)?),
            Param::Frames => {
                if value != "1" {
                    return Err(invalid(format!(
                        "`frames` can only be 1 (the first frame of an animation), got {}",
                        shown(value)
                    )));
                }
                self.first_frame = true;
            }
            Param::Progressive => {
                self.progressive = match value {
                    "0" => false,
                    "1" => true,
                    _ => return Err(invalid(format!("`progressive` must be 0 or 1, got {}", shown(value)))),
                }
            }
        }
        Ok(())
    }

    /// Decide everything left open for an image of `size` (as EXIF orientation leaves it): the
    /// format (from `Accept` for `fmt=auto`), the quality, the crop (clamped at the image's
    /// edges; refused when it misses the image) and the parameters that cannot matter (`fit`
    /// without both sides, `q` for PNG, a crop of the whole image).
    pub fn resolve(
        &self,
        accept: Option<&str>,
        has_alpha: bool,
        size: (u32, u32),
    ) -> Result<ResolvedRecipe, RecipeError> {
        self.resolve_animated(accept, has_alpha, false, size)
    }

    /// As [`resolve`](Self::resolve), for a source that is an animation when `animated`:
    /// `fmt=auto` then keeps it animated (WebP if accepted, else GIF) unless `frames=1` asks
    /// for the first frame.
    pub fn resolve_animated(
        &self,
        accept: Option<&str>,
        has_alpha: bool,
        animated: bool,
        size: (u32, u32),
    ) -> Result<ResolvedRecipe, RecipeError> {
        let format = match self.format {
            FormatChoice::Fixed(format) => format,
            FormatChoice::Auto if animated && !self.first_frame => negotiate_animation(accept),
            FormatChoice::Auto => negotiate(accept, has_alpha),
        };
        // Only an animation, in a format that animates, has frames to leave out.
        let first_frame = self.first_frame && animated && format.animates();
        let both_sides = self.width.is_some() && self.height.is_some();
        let quality = format.default_quality().map(|default| self.quality.unwrap_or(default));
        let fit = if both_sides { self.fit } else { Fit::default() };
        // Only a crop has somewhere to keep; a focal point outranks a gravity.
        let anchor = match self.focal {
            _ if !(both_sides && fit == Fit::Cover) => Anchor::default(),
            Some(point) => Anchor::Focal(point),
            None if self.smart => Anchor::Smart,
            None => Anchor::Gravity(self.gravity),
        };
        let turn = self.rotate.then(self.flip);
        let crop = match self.crop {
            None => None,
            Some(asked) => {
                let crop = asked.within(size.0, size.1).ok_or_else(|| {
                    invalid(format!("`crop={}` starts outside the {}x{} image", crop_text(asked), size.0, size.1))
                })?;
                (!crop.is_whole(size.0, size.1)).then_some(crop)
            }
        };
        // A background only where something shows it: bars, padding, or transparency flattened.
        let shows_background = (both_sides && fit == Fit::Contain)
            || !self.effects.padding.is_zero()
            || (has_alpha && !format.supports_alpha());
        let effects = Effects { background: self.effects.background.filter(|_| shows_background), ..self.effects };
        Ok(ResolvedRecipe {
            resize: Resize { width: self.width, height: self.height, fit, enlarge: self.enlarge, anchor, turn, crop },
            effects,
            format,
            quality,
            first_frame,
            progressive: self.progressive && format == OutputFormat::Jpeg,
        })
    }
}

/// `g`'s value for a smart crop.
const SMART: &str = "smart";

/// The configured presets' names, for error messages.
fn preset_names(limits: &RecipeLimits) -> String {
    if limits.presets.is_empty() {
        return "no presets are configured".into();
    }
    let names: Vec<&str> = limits.presets.keys().map(String::as_str).collect();
    format!("presets: {}", names.join(", "))
}

/// `rot`'s values: clockwise turns.
const ROTATIONS: [(&str, Orientation); 4] = [
    ("0", Orientation::Normal),
    ("90", Orientation::Rotate90),
    ("180", Orientation::Rotate180),
    ("270", Orientation::Rotate270),
];

/// `flip`'s values: mirror left-right, top-bottom, or both.
const FLIPS: [(&str, Orientation); 3] =
    [("h", Orientation::FlipHorizontal), ("v", Orientation::FlipVertical), ("hv", Orientation::Rotate180)];

fn rotation_degrees(rotate: Orientation) -> &'static str {
    ROTATIONS.iter().find(|(_, o)| *o == rotate).map_or("0", |(degrees, _)| degrees)
}

/// A turn's one spelling: each of the eight is a clockwise rotation, then at most a left-right
/// mirror (`flip=v` is written `rot=180&flip=h`).
fn turn_parts(turn: Orientation) -> (Orientation, bool) {
    for (_, rotate) in ROTATIONS {
        if rotate == turn {
            return (rotate, false);
        }
        if rotate.then(Orientation::FlipHorizontal) == turn {
            return (rotate, true);
        }
    }
    (Orientation::Normal, false)
}

/// A focal point, `X,Y`, each a fraction from 0 to 1 with at most three decimals.
fn focal_point(value: &str) -> Result<FocalPoint, RecipeError> {
    let wrong =
        || invalid(format!("`fp` must be X,Y with each between 0 and 1 (at most 3 decimals), got {}", shown(value)));
    let fraction = |text: &str| -> Option<u16> {
        let (whole, decimals) = text.split_once('.').unwrap_or((text, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || whole.len() > 1 || !digits(whole) || !digits(decimals) || decimals.len() > 3 {
            return None;
        }
        if text.ends_with('.') {
            return None;
        }
        let thousandths = format!("{decimals:0<3}").parse::<u16>().ok()? + whole.parse::<u16>().ok()? * 1000;
        (thousandths <= 1000).then_some(thousandths)
    };
    let (x, y) = value.split_once(',').ok_or_else(wrong)?;
    Ok(FocalPoint { x: fraction(x).ok_or_else(wrong)?, y: fraction(y).ok_or_else(wrong)? })
}

/// A focal point's one spelling: `0.25,1`.
fn focal_text(point: FocalPoint) -> String {
    let one = |t: u16| {
        let text = format!("{}.{:03}", t / 1000, t % 1000);
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    };
    format!("{},{}", one(point.x), one(point.y))
}

/// A decimal whole number: digits only, no sign, no spaces, no exponent.
fn number(param: Param, value: &str) -> Result<u32, RecipeError> {
    whole_number(value)
        .ok_or_else(|| invalid(format!("`{}` must be a whole number, got {}", param.name(), shown(value))))
}

fn whole_number(value: &str) -> Option<u32> {
    if value.is_empty() || value.len() > 9 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// `dpr` in hundredths: 1 to 4, at most two decimals.
const ONE_DPR: u32 = 100;

fn device_pixel_ratio(value: &str) -> Result<u32, RecipeError> {
    hundredths(value)
        .filter(|h| (ONE_DPR..=4 * ONE_DPR).contains(h))
        .ok_or_else(|| invalid(format!("`dpr` must be between 1 and 4 with at most 2 decimals, got {}", shown(value))))
}

/// A decimal with at most two decimals (`1`, `0.3`, `12.25`), in hundredths.
fn hundredths(value: &str) -> Option<u32> {
    let (whole, decimals) = value.split_once('.').unwrap_or((value, ""));
    if whole.is_empty() || whole.len() > 3 || decimals.len() > 2 || value.ends_with('.') {
        return None;
    }
    let decimals = if decimals.is_empty() { 0 } else { whole_number(&format!("{decimals:0<2}"))? };
    Some(whole_number(whole)? * 100 + decimals)
}

/// Hundredths as written: `1.5`, `0.3`, `100`.
fn hundredths_text(h: u16) -> String {
    let text = format!("{}.{:02}", h / 100, h % 100);
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A blur or sharpen sigma, in hundredths, between `min` and `max`.
fn sigma(param: Param, value: &str, min: u32, max: u32) -> Result<u16, RecipeError> {
    hundredths(value).filter(|h| (min..=max).contains(h)).map(|h| h as u16).ok_or_else(|| {
        invalid(format!(
            "`{}` must be a sigma between {} and {} with at most 2 decimals, got {}",
            param.name(),
            hundredths_text(min as u16),
            hundredths_text(max as u16),
            shown(value)
        ))
    })
}

/// `pad`: `N` for every side, or `T,R,B,L`, in whole pixels.
fn padding(value: &str) -> Result<Padding, RecipeError> {
    let sides: Vec<Option<u32>> = value.split(',').map(whole_number).collect();
    match sides[..] {
        [Some(all)] => Ok(Padding { top: all, right: all, bottom: all, left: all }),
        [Some(top), Some(right), Some(bottom), Some(left)] => Ok(Padding { top, right, bottom, left }),
        _ => Err(invalid(format!("`pad` must be N or T,R,B,L in whole pixels, got {}", shown(value)))),
    }
}

/// `pad`'s one spelling: `N` when every side is the same.
fn padding_text(p: Padding) -> String {
    if [p.right, p.bottom, p.left].iter().all(|side| *side == p.top) {
        p.top.to_string()
    } else {
        format!("{},{},{},{}", p.top, p.right, p.bottom, p.left)
    }
}

/// `bg`: `RRGGBB` or `RRGGBBAA` in hexadecimal, either case.
fn colour(value: &str) -> Result<Rgba, RecipeError> {
    let wrong = || invalid(format!("`bg` must be RRGGBB or RRGGBBAA in hexadecimal, got {}", shown(value)));
    if !(value.len() == 6 || value.len() == 8) || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(wrong());
    }
    let byte = |i: usize| u8::from_str_radix(&value[i..i + 2], 16).map_err(|_| wrong());
    let alpha = if value.len() == 8 { byte(6)? } else { 255 };
    Ok([byte(0)?, byte(2)?, byte(4)?, alpha])
}

/// `bg`'s one spelling: lower case, the alpha only when it is not opaque.
fn colour_text([r, g, b, a]: Rgba) -> String {
    if a == 255 {
        format!("{r:02x}{g:02x}{b:02x}")
    } else {
        format!("{r:02x}{g:02x}{b:02x}{a:02x}")
    }
}

/// The effects as recipe parameters, in their fixed order, each only when it does something.
fn effects_text(effects: &Effects) -> String {
    let mut out = String::new();
    if let Some(sigma) = effects.blur {
        out += &format!("&blur={}", hundredths_text(sigma));
    }
    if let Some(sigma) = effects.sharpen {
        out += &format!("&sharpen={}", hundredths_text(sigma));
    }
    if !effects.padding.is_zero() {
        out += &format!("&pad={}", padding_text(effects.padding));
    }
    if let Some(bg) = effects.background {
        out += &format!("&bg={}", colour_text(bg));
    }
    out
}

/// `n` pixels at `dpr` hundredths, rounded to the nearest pixel.
fn scaled(n: u32, dpr: u32) -> u32 {
    ((u64::from(n) * u64::from(dpr) + 50) / 100).min(u64::from(u32::MAX)) as u32
}

/// A crop: `X,Y,W,H` in whole pixels, width and height at least 1.
fn crop(value: &str) -> Result<Crop, RecipeError> {
    let parts: Vec<Option<u32>> = value.split(',').map(whole_number).collect();
    match parts[..] {
        [Some(left), Some(top), Some(width), Some(height)] if width > 0 && height > 0 => {
            Ok(Crop { left, top, width, height })
        }
        _ => Err(invalid(format!(
            "`crop` must be X,Y,W,H in whole pixels (width and height at least 1), got {}",
            shown(value)
        ))),
    }
}

fn crop_text(crop: Crop) -> String {
    format!("{},{},{},{}", crop.left, crop.top, crop.width, crop.height)
}

/// A side in pixels (after `dpr`), checked against the limits.
fn pixels(param: Param, n: u32, dpr: u32, limits: &RecipeLimits) -> Result<u32, RecipeError> {
    let max = if param == Param::Width { limits.max_width } else { limits.max_height };
    let name = param.name();
    let asked = if dpr == ONE_DPR { format!("{n}") } else { format!("{n} (after dpr)") };
    if n == 0 || n > max {
        return Err(invalid(format!("`{name}` must be between 1 and {max} pixels, got {asked}")));
    }
    if let Some(allowed) = &limits.allowed_sizes {
        if !allowed.contains(&n) {
            let list: Vec<String> = allowed.iter().map(u32::to_string).collect();
            return Err(invalid(format!("`{name}={asked}` is not an allowed size; allowed: {}", list.join(", "))));
        }
    }
    Ok(n)
}

impl ResolvedRecipe {
    /// The canonical form: fixed order, defaults explicit, absent sides left out, a gravity or
    /// focal point only where it moves a crop.
    /// `w=400&h=300&fit=cover&fmt=webp&q=80&enlarge=0&g=ne`
    pub fn canonical(&self) -> String {
        self.to_string()
    }

    /// Read back a [`canonical`](Self::canonical) form, as a job carries it. Only that exact
    /// spelling is accepted (it is what names the variant); request limits do not apply, they
    /// were checked when the request was resolved.
    pub fn from_canonical(canonical: &str) -> Result<ResolvedRecipe, RecipeError> {
        let mut recipe = ResolvedRecipe {
            resize: Resize::default(),
            effects: Effects::default(),
            format: OutputFormat::Png,
            quality: None,
            first_frame: false,
            progressive: false,
        };
        let whole = |name: &str, value: &str| -> Result<u32, RecipeError> {
            value.parse().map_err(|_| invalid(format!("`{name}` is not a whole number in {}", shown(canonical))))
        };
        for pair in canonical.split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match name {
                "w" => recipe.resize.width = Some(whole(name, value)?),
                "h" => recipe.resize.height = Some(whole(name, value)?),
                "fit" => {
                    recipe.resize.fit =
                        Fit::parse(value).ok_or_else(|| invalid(format!("unknown fit {}", shown(value))))?
                }
                "fmt" => {
                    recipe.format =
                        OutputFormat::parse(value).ok_or_else(|| invalid(format!("unknown format {}", shown(value))))?
                }
                "q" => {
                    recipe.quality =
                        Some(u8::try_from(whole(name, value)?).map_err(|_| invalid("`q` over 255".into()))?)
                }
                "enlarge" => recipe.resize.enlarge = value == "1",
                "g" if value == SMART => recipe.resize.anchor = Anchor::Smart,
                "g" => {
                    let gravity =
                        Gravity::parse(value).ok_or_else(|| invalid(format!("unknown gravity {}", shown(value))))?;
                    recipe.resize.anchor = Anchor::Gravity(gravity);
                }
                "fp" => recipe.resize.anchor = Anchor::Focal(focal_point(value)?),
                "rot" => {
                    let rotate = ROTATIONS.iter().find(|(d, _)| *d == value).map(|(_, o)| *o);
                    recipe.resize.turn = rotate.ok_or_else(|| invalid(format!("unknown rotation {}", shown(value))))?;
                }
                "flip" if value == "h" => recipe.resize.turn = recipe.resize.turn.then(Orientation::FlipHorizontal),
                "crop" => recipe.resize.crop = Some(crop(value)?),
                "blur" => recipe.effects.blur = Some(sigma(Param::Blur, value, 1, u32::from(u16::MAX))?),
                "sharpen" => recipe.effects.sharpen = Some(sigma(Param::Sharpen, value, 1, u32::from(u16::MAX))?),
                "pad" => recipe.effects.padding = padding(value)?,
                "bg" => recipe.effects.background = Some(colour(value)?),
                "frames" if value == "1" => recipe.first_frame = true,
                "progressive" if value == "1" => recipe.progressive = true,
                _ => return Err(invalid(format!("{} is not a canonical recipe", shown(canonical)))),
            }
        }
        if recipe.canonical() != canonical {
            return Err(invalid(format!("{} is not a canonical recipe", shown(canonical))));
        }
        Ok(recipe)
    }

    pub fn render_spec(&self) -> RenderSpec {
        RenderSpec {
            resize: self.resize,
            effects: self.effects,
            format: self.format,
            quality: self.quality.unwrap_or(100),
            animate: !self.first_frame,
            progressive: self.progressive,
        }
    }
}

impl fmt::Display for ResolvedRecipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(w) = self.resize.width {
            write!(f, "w={w}&")?;
        }
        if let Some(h) = self.resize.height {
            write!(f, "h={h}&")?;
        }
        write!(f, "fit={}&fmt={}&", self.resize.fit.as_str(), self.format)?;
        if let Some(q) = self.quality {
            write!(f, "q={q}&")?;
        }
        write!(f, "enlarge={}", u8::from(self.resize.enlarge))?;
        // After everything older, so that the canonical forms (and cache keys) of recipes
        // without them did not change when they came.
        match self.resize.anchor {
            Anchor::Gravity(Gravity::Centre) => {}
            Anchor::Gravity(gravity) => write!(f, "&g={}", gravity.as_str())?,
            Anchor::Focal(point) => write!(f, "&fp={}", focal_text(point))?,
            Anchor::Smart => write!(f, "&g={SMART}")?,
        }
        let (rotate, mirrored) = turn_parts(self.resize.turn);
        if rotate != Orientation::Normal {
            write!(f, "&rot={}", rotation_degrees(rotate))?;
        }
        if mirrored {
            write!(f, "&flip=h")?;
        }
        if let Some(crop) = self.resize.crop {
            write!(f, "&crop={}", crop_text(crop))?;
        }
        f.write_str(&effects_text(&self.effects))?;
        if self.first_frame {
            f.write_str("&frames=1")?;
        }
        if self.progressive {
            f.write_str("&progressive=1")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> Result<Recipe, RecipeError> {
        Recipe::parse(q, &RecipeLimits::default())
    }

    fn canonical(q: &str) -> String {
        parse(q).expect("valid").resolve(None, false, (4000, 3000)).expect("resolves").canonical()
    }

    /// `frames=1` is kept only where it changes something: an animation, in a format that
    /// animates. `fmt=auto` keeps an animation animated (WebP if accepted, else GIF).
    #[test]
    fn first_frame_only_where_it_matters_and_auto_keeps_animations_moving() {
        let animated = |q: &str, accept: Option<&str>| {
            parse(q).expect("valid").resolve_animated(accept, false, true, (96, 96)).expect("resolves")
        };
        assert_eq!(
            animated("w=48&fmt=webp&frames=1", None).canonical(),
            "w=48&fit=cover&fmt=webp&q=80&enlarge=0&frames=1"
        );
        assert!(animated("w=48&fmt=webp&frames=1", None).render_spec().animate.eq(&false));
        assert_eq!(animated("w=48&fmt=jpeg&frames=1", None).canonical(), animated("w=48&fmt=jpeg", None).canonical());
        assert_eq!(canonical("w=48&fmt=webp&frames=1"), canonical("w=48&fmt=webp"), "a still has one frame anyway");
        assert_eq!(animated("w=48", Some("image/avif,image/webp")).format, OutputFormat::Webp, "no AVIF sequences");
        assert_eq!(animated("w=48", Some("image/avif,image/png")).format, OutputFormat::Gif);
        assert_eq!(animated("w=48&frames=1", Some("image/avif")).format, OutputFormat::Avif, "a still frame");
        assert_eq!(animated("w=48&fmt=gif&q=50", None).canonical(), "w=48&fit=cover&fmt=gif&enlarge=0");
        assert!(parse("frames=2").is_err() && parse("frames=0").is_err());
        let canonical_first = animated("w=48&fmt=gif&frames=1", None);
        assert_eq!(ResolvedRecipe::from_canonical(&canonical_first.canonical()).expect("read back"), canonical_first);
        assert!(parse("w=48&frames=1").expect("valid").signed_form().ends_with("&frames=1"));
    }

    /// `progressive=1` only means something for JPEG; `progressive=0` is the default.
    #[test]
    fn progressive_only_for_jpeg() {
        assert_eq!(canonical("w=400&fmt=jpeg&progressive=1"), "w=400&fit=cover&fmt=jpeg&q=80&enlarge=0&progressive=1");
        assert_eq!(canonical("w=400&fmt=jpeg&progressive=0"), canonical("w=400&fmt=jpeg"));
        assert_eq!(canonical("w=400&fmt=webp&progressive=1"), canonical("w=400&fmt=webp"));
        let read = ResolvedRecipe::from_canonical("w=400&fit=cover&fmt=jpeg&q=80&enlarge=0&progressive=1");
        assert!(read.expect("canonical").render_spec().progressive);
        assert!(parse("progressive=yes").is_err());
    }

    #[test]
    fn gravity_and_focal_point_have_one_spelling_and_only_where_they_crop() {
        assert_eq!(canonical("w=400&h=300&g=ne"), "w=400&h=300&fit=cover&fmt=jpeg&q=80&enlarge=0&g=ne");
        assert_eq!(canonical("w=400&h=300&gravity=ne"), canonical("w=400&h=300&g=ne"));
        assert_eq!(canonical("w=400&h=300&g=c"), canonical("w=400&h=300"), "the default is not written");
        assert_eq!(canonical("w=400&g=ne"), canonical("w=400"), "one side: nothing is cropped");
        assert_eq!(canonical("w=400&h=300&fit=contain&g=ne"), canonical("w=400&h=300&fit=contain"));
        assert_eq!(canonical("w=4&h=3&fp=0.250,1.0"), "w=4&h=3&fit=cover&fmt=jpeg&q=80&enlarge=0&fp=0.25,1");
        assert_eq!(canonical("w=4&h=3&fp=0.5,0.5&g=w"), canonical("w=4&h=3&fp=0.5,0.5"), "a focal point outranks g");
        assert_eq!(canonical("w=4&h=3&fp=0,0.001"), "w=4&h=3&fit=cover&fmt=jpeg&q=80&enlarge=0&fp=0,0.001");
        assert_eq!(canonical("w=4&h=3&g=smart"), "w=4&h=3&fit=cover&fmt=jpeg&q=80&enlarge=0&g=smart");
        assert_eq!(canonical("w=4&g=smart"), canonical("w=4"), "smart, but nothing to crop");
        assert_eq!(canonical("w=4&h=3&fp=0.5,0.5&g=smart"), canonical("w=4&h=3&fp=0.5,0.5"));
        for bad in [
            "g=x",
            "g=C",
            "g=",
            "fp=0.5",
            "fp=1.5,0",
            "fp=0.5,-0",
            "fp=.5,.5",
            "fp=0.1234,0",
            "fp=0.5,0.5,0",
            "fp=1.,0",
        ] {
            let error = parse(bad).expect_err(bad);
            assert!(error.message().contains(if bad.starts_with('g') { "`g`" } else { "`fp`" }), "{bad}: {error}");
        }
        assert!(parse("g=n&gravity=s").expect_err("twice").message().contains("same parameter"));
        // The signed form keeps its old shape, with what was given after it.
        assert_eq!(parse("w=4").expect("valid").signed_form(), "w=4&h=-&fit=cover&fmt=auto&q=-&enlarge=0");
        assert_eq!(
            parse("w=4&fp=0.5,0&g=s").expect("valid").signed_form(),
            "w=4&h=-&fit=cover&fmt=auto&q=-&enlarge=0&g=s&fp=0.5,0"
        );
    }

    #[test]
    fn turns_have_one_spelling() {
        let base = "w=4&fit=cover&fmt=jpeg&q=80&enlarge=0";
        assert_eq!(canonical("w=4&rot=0"), base);
        assert_eq!(canonical("w=4&rot=90"), format!("{base}&rot=90"));
        assert_eq!(canonical("w=4&flip=h"), format!("{base}&flip=h"));
        assert_eq!(canonical("w=4&flip=v"), format!("{base}&rot=180&flip=h"));
        assert_eq!(canonical("w=4&flip=hv"), canonical("w=4&rot=180"));
        assert_eq!(canonical("w=4&rot=180&flip=hv"), base, "they undo each other");
        assert_eq!(canonical("w=4&rot=90&flip=h"), canonical("w=4&rot=270&flip=v"));
        for bad in ["rot=45", "rot=-90", "rot=360", "flip=x", "flip=", "flip=vh"] {
            assert!(parse(bad).is_err(), "{bad} was taken");
        }
        let signed = parse("w=4&flip=v&rot=90").expect("valid").signed_form();
        assert_eq!(signed, "w=4&h=-&fit=cover&fmt=auto&q=-&enlarge=0&rot=90&flip=v");
    }

    #[test]
    fn crops_are_clamped_to_the_image_and_written_only_where_they_cut() {
        let resolved = |q: &str, size| parse(q).expect("valid").resolve(None, false, size).map(|r| r.canonical());
        let base = "w=4&fit=cover&fmt=jpeg&q=80&enlarge=0";
        assert_eq!(resolved("w=4&crop=10,20,30,40", (100, 100)), Ok(format!("{base}&crop=10,20,30,40")));
        assert_eq!(
            resolved("w=4&crop=90,20,30,400", (100, 100)),
            resolved("w=4&crop=90,20,10,80", (100, 100)),
            "clamped at the right and bottom edges"
        );
        assert_eq!(resolved("w=4&crop=0,0,100,100", (100, 100)), Ok(base.to_string()), "the whole image");
        assert_eq!(resolved("w=4&crop=0,0,999,999", (100, 100)), Ok(base.to_string()));
        let outside = resolved("w=4&crop=100,0,5,5", (100, 100)).expect_err("outside");
        assert_eq!(outside.message(), "`crop=100,0,5,5` starts outside the 100x100 image");
        for bad in ["crop=1,2,3", "crop=1,2,3,0", "crop=-1,0,3,3", "crop=1,2,3,4,5", "crop=a,b,c,d", "crop="] {
            assert!(parse(bad).expect_err(bad).message().contains("`crop`"), "{bad}");
        }
        let signed = parse("crop=1,2,3,4&w=4").expect("valid").signed_form();
        assert_eq!(signed, "w=4&h=-&fit=cover&fmt=auto&q=-&enlarge=0&crop=1,2,3,4");
    }

    /// The CloudFront Function folds `dpr` at the edge (tests/template_test.py runs it on the
    /// same cases): what it passes on must be the recipe the viewer asked for, or as wrong.
    #[test]
    fn the_edges_dpr_folding_gives_the_same_recipe() {
        let cases: serde_json::Value =
            serde_json::from_str(include_str!("../../../tests/edge_dpr_cases.json")).expect("json");
        let cases = cases["cases"].as_array().expect("cases");
        assert!(cases.len() >= 10);
        let without_sig = |q: &str| q.split('&').filter(|p| !p.starts_with("sig=")).collect::<Vec<_>>().join("&");
        let recipe = |q: &str| {
            parse(&without_sig(q)).map(|r| r.resolve(None, false, (4000, 3000)).expect("resolves").canonical())
        };
        for case in cases {
            let (sent, passed) = (case[0].as_str().expect("sent"), case[1].as_str().expect("passed"));
            match (recipe(sent), recipe(passed)) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{sent} -> {passed}"),
                (Err(_), Err(_)) => {}
                (a, b) => panic!("{sent} -> {passed}: {a:?} vs {b:?}"),
            }
        }
    }

    #[test]
    fn dpr_folds_into_the_sides_before_the_limits() {
        assert_eq!(canonical("w=200&dpr=2"), canonical("w=400"));
        assert_eq!(canonical("w=200&h=101&dpr=1.5"), canonical("w=300&h=152"), "rounded to the nearest pixel");
        assert_eq!(canonical("dpr=3"), canonical(""), "nothing to multiply");
        assert_eq!(canonical("w=200&dpr=1.00"), canonical("w=200"));
        assert_eq!(
            error("w=5000&dpr=2"),
            "`w` must be between 1 and 8192 pixels, got 10000 (after dpr)",
            "limits hold after the ratio"
        );
        let allowed = RecipeLimits { allowed_sizes: Some([200, 400].into()), ..RecipeLimits::default() };
        assert!(Recipe::parse("w=200&dpr=2", &allowed).is_ok(), "400 is allowed");
        assert!(Recipe::parse("w=200&dpr=1.5", &allowed).is_err(), "300 is not");
        for bad in ["dpr=0.5", "dpr=4.01", "dpr=5", "dpr=2.", "dpr=.5", "dpr=1.234", "dpr=x", "dpr=", "dpr=+2"] {
            assert!(parse(bad).expect_err(bad).message().contains("`dpr`"), "{bad}");
        }
        assert_eq!(parse("w=100&dpr=2").expect("valid").signed_form(), parse("w=200").expect("valid").signed_form());
    }

    #[test]
    fn effects_have_one_spelling() {
        let base = "w=4&fit=cover&fmt=jpeg&q=80&enlarge=0";
        assert_eq!(canonical("w=4&blur=2.50"), format!("{base}&blur=2.5"));
        assert_eq!(canonical("w=4&blur=0.3&sharpen=10"), format!("{base}&blur=0.3&sharpen=10"));
        assert_eq!(canonical("w=4&pad=5"), canonical("w=4&pad=5,5,5,5"));
        assert_eq!(canonical("w=4&pad=1,2,3,4"), format!("{base}&pad=1,2,3,4"));
        assert_eq!(canonical("w=4&pad=0"), base, "no padding");
        assert_eq!(canonical("w=4&pad=3&dpr=2"), canonical("w=8&pad=6"), "dpr multiplies the padding");
        assert_eq!(canonical("w=4&pad=1&bg=FFAA00"), format!("{base}&pad=1&bg=ffaa00"));
        assert_eq!(canonical("w=4&pad=1&bg=ffaa00ff"), canonical("w=4&pad=1&background=ffaa00"));
        assert_eq!(canonical("w=4&pad=1&bg=ffaa0080"), format!("{base}&pad=1&bg=ffaa0080"));
        // Only where something shows it: bars, padding, or transparency flattened into JPEG.
        assert_eq!(canonical("w=4&bg=ffaa00"), base, "nothing shows the background");
        assert_eq!(
            canonical("w=4&h=4&fit=contain&fmt=png&bg=000000"),
            "w=4&h=4&fit=contain&fmt=png&enlarge=0&bg=000000"
        );
        let on = |q: &str, alpha| {
            parse(q).expect("valid").resolve(None, alpha, (40, 30)).expect("resolves").canonical().contains("bg=")
        };
        assert!(on("fmt=jpeg&bg=ffffff", true) && !on("fmt=jpeg&bg=ffffff", false) && !on("fmt=png&bg=ffffff", true));
        for (bad, name) in [
            ("blur=0.2", "`blur`"),
            ("blur=100.01", "`blur`"),
            ("blur=1.234", "`blur`"),
            ("blur=-1", "`blur`"),
            ("sharpen=10.5", "`sharpen`"),
            ("sharpen=", "`sharpen`"),
            ("pad=1,2", "`pad`"),
            ("pad=-1", "`pad`"),
            ("pad=9000", "`pad`"),
            ("bg=fff", "`bg`"),
            ("bg=gggggg", "`bg`"),
            ("bg=%23ffffff", "`bg`"),
        ] {
            assert!(parse(bad).expect_err(bad).message().contains(name), "{bad}");
        }
        let signed = parse("bg=ABCDEF&pad=2&blur=1").expect("valid").signed_form();
        assert_eq!(signed, "w=-&h=-&fit=cover&fmt=auto&q=-&enlarge=0&blur=1&pad=2&bg=abcdef");
    }

    #[test]
    fn presets_expand_before_the_limits_and_the_signature() {
        let mut limits = RecipeLimits {
            presets: [("thumb".to_string(), "w=200&h=200&fmt=webp&g=n".to_string())].into(),
            ..RecipeLimits::default()
        };
        let with = |q: &str, limits: &RecipeLimits| {
            Recipe::parse(q, limits).map(|r| r.resolve(None, false, (4000, 3000)).expect("resolves").canonical())
        };
        assert_eq!(with("preset=thumb", &limits), with("w=200&h=200&fmt=webp&g=n", &limits));
        let thumb = Recipe::parse("preset=thumb", &limits).expect("valid");
        assert_eq!(thumb.signed_form(), "w=200&h=200&fit=cover&fmt=webp&q=-&enlarge=0&g=n", "signed as expanded");
        let unknown = Recipe::parse("preset=big", &limits).expect_err("unknown");
        assert_eq!(unknown.message(), "unknown preset \"big\"; presets: thumb");
        let mixed = Recipe::parse("preset=thumb&dpr=2", &limits).expect_err("mixed");
        assert!(mixed.message().contains("cannot be combined"), "{mixed}");
        assert!(Recipe::parse("w=10", &limits).is_ok(), "other recipes still served");
        limits.presets_mix = true;
        assert_eq!(with("preset=thumb&dpr=2&fmt=png", &limits), with("w=400&h=400&fmt=png&g=n", &limits));
        limits.allowed_sizes = Some([200].into());
        assert!(Recipe::parse("preset=thumb", &limits).is_ok());
        assert!(Recipe::parse("preset=thumb&dpr=2", &limits).is_err(), "allowed sizes apply after dpr");
        limits.presets_only = true;
        let only = Recipe::parse("w=200", &limits).expect_err("not a preset");
        assert_eq!(only.message(), "only presets are served here: give preset=NAME (presets: thumb)");
        assert!(Recipe::parse("", &limits).is_err());
        assert!(Recipe::parse("preset=thumb", &limits).is_ok());
        let none = Recipe::parse("preset=thumb", &RecipeLimits::default()).expect_err("none configured");
        assert!(none.message().contains("no presets are configured"), "{none}");
    }

    /// Every canonical form reads back as itself; anything else is refused.
    #[test]
    fn canonical_forms_read_back_and_nothing_else_does() {
        for q in [
            "w=400",
            "w=400&h=300&fit=contain&fmt=png",
            "h=1&fmt=avif&q=1&enlarge=1",
            "fmt=jpeg&q=100",
            "w=9&h=9&g=sw",
            "w=9&h=9&fp=0.3,0.7",
            "w=9&h=9&g=smart",
            "w=9&rot=270&flip=h",
            "w=9&flip=h",
            "h=2&rot=90",
            "w=9&rot=90&crop=5,6,7,8",
            "w=9&blur=0.5&sharpen=2.25&pad=1,2,3,4&bg=01020304",
            "w=9&h=9&fit=contain&pad=7&bg=ffffff",
        ] {
            let resolved = parse(q).expect("valid").resolve(None, false, (4000, 3000)).expect("resolves");
            assert_eq!(ResolvedRecipe::from_canonical(&resolved.canonical()), Ok(resolved), "{q}");
        }
        for bad in
            ["", "w=400", "fit=cover&fmt=png&enlarge=0&w=1", "w=01&fit=cover&fmt=png&enlarge=0", "fmt=auto&enlarge=0"]
        {
            assert!(ResolvedRecipe::from_canonical(bad).is_err(), "{bad:?} was taken");
        }
    }

    fn error(q: &str) -> String {
        parse(q).expect_err("invalid").message().to_string()
    }

    #[test]
    fn canonical_form_is_explicit_and_ordered() {
        assert_eq!(canonical(""), "fit=cover&fmt=jpeg&q=80&enlarge=0");
        assert_eq!(canonical("fmt=webp&h=300&w=400"), "w=400&h=300&fit=cover&fmt=webp&q=80&enlarge=0");
        assert_eq!(canonical("?width=400&format=png&quality=50"), "w=400&fit=cover&fmt=png&enlarge=0");
        assert_eq!(canonical("w=400&fit=inside"), canonical("w=400"));
        assert_eq!(canonical("fmt=jpg&q=080"), "fit=cover&fmt=jpeg&q=80&enlarge=0");
        assert_eq!(canonical("fmt=avif&enlarge=1&w=10&h=20&fit=fill"), "w=10&h=20&fit=fill&fmt=avif&q=51&enlarge=1");
    }

    #[test]
    fn auto_resolves_from_accept_before_the_key_is_made() {
        let recipe = parse("w=100").expect("valid");
        assert_eq!(
            recipe.resolve(Some("image/avif,image/webp"), false, (4000, 3000)).expect("resolves").format,
            OutputFormat::Avif
        );
        assert_eq!(
            recipe.resolve(Some("image/webp"), true, (4000, 3000)).expect("resolves").canonical(),
            canonical("w=100&fmt=webp")
        );
        assert_eq!(recipe.resolve(None, true, (4000, 3000)).expect("resolves").format, OutputFormat::Png);
    }

    #[test]
    fn errors_are_precise() {
        assert_eq!(error("w=abc"), "`w` must be a whole number, got \"abc\"");
        assert_eq!(error("w=0"), "`w` must be between 1 and 8192 pixels, got 0");
        assert_eq!(error("h=9000"), "`h` must be between 1 and 8192 pixels, got 9000");
        assert_eq!(error("w=-1"), "`w` must be a whole number, got \"-1\"");
        assert_eq!(error("w=1e3"), "`w` must be a whole number, got \"1e3\"");
        assert_eq!(error("q=0"), "`q` must be between 1 and 100, got 0");
        assert_eq!(error("q=101"), "`q` must be between 1 and 100, got 101");
        assert_eq!(error("fit=crop"), "`fit` must be cover, contain, fill, inside or outside, got \"crop\"");
        assert_eq!(error("fmt=tiff"), "`fmt` must be jpeg, png, webp, avif, jxl, gif or auto, got \"tiff\"");
        assert_eq!(error("enlarge=yes"), "`enlarge` must be 0 or 1, got \"yes\"");
        assert_eq!(error("w=1&w=2"), "\"w\" is given twice; give `w` once");
        assert_eq!(error("w=1&width=2"), "\"w\" and \"width\" are the same parameter; give `w` once");
        assert!(error("radius=3").starts_with("unknown parameter \"radius\""));
        assert_eq!(error("w=1&&h=2"), "parameter 2 is empty (a stray '&')");
        assert_eq!(error("w"), "parameter \"w\" has no value (expected name=value)");
        assert_eq!(error("w=%FF"), "\"%FF\" is not valid UTF-8 once decoded");
        assert!(error(&"w=1&".repeat(200)).contains("over the limit of 512"));
        assert!(error("W=1").starts_with("unknown parameter \"W\""));
        assert_eq!(error("w=99999999999"), "`w` must be a whole number, got \"99999999999\"");
    }

    #[test]
    fn form_encoding_is_decoded_before_validation() {
        assert_eq!(canonical("w=%34%30%30"), canonical("w=400"));
        assert_eq!(canonical("%77=400"), canonical("w=400"));
        assert_eq!(error("w=+400"), "`w` must be a whole number, got \" 400\"");
    }

    #[test]
    fn allow_list_and_custom_maxima() {
        let limits =
            RecipeLimits { allowed_sizes: Some([100, 200].into()), max_width: 1000, ..RecipeLimits::default() };
        assert!(Recipe::parse("w=200&h=100", &limits).is_ok());
        assert_eq!(
            Recipe::parse("w=150", &limits).expect_err("not allowed").message(),
            "`w=150` is not an allowed size; allowed: 100, 200"
        );
        let small = RecipeLimits { max_width: 1000, ..RecipeLimits::default() };
        assert!(Recipe::parse("w=1001", &small).is_err());
    }

    #[test]
    fn control_characters_in_errors_are_escaped() {
        let message = error("fit=a%0Ab");
        assert!(!message.contains('\n'), "{message}");
    }

    /// Every request limit, exactly at its value and one past it.
    #[test]
    fn request_limits_hold_at_their_value_and_refuse_one_past_it() {
        let d = RecipeLimits::default();
        assert!(parse(&format!("w={}", d.max_width)).is_ok());
        assert!(parse(&format!("w={}", d.max_width + 1)).is_err());
        assert!(parse(&format!("h={}", d.max_height)).is_ok());
        assert!(parse(&format!("h={}", d.max_height + 1)).is_err());
        let query = "w=400&h=300&fit=contain&fmt=webp&q=80";
        let at = RecipeLimits { max_query_len: query.len(), ..RecipeLimits::default() };
        let under = RecipeLimits { max_query_len: query.len() - 1, ..RecipeLimits::default() };
        assert!(Recipe::parse(query, &at).is_ok());
        assert!(Recipe::parse(query, &under).expect_err("too long").message().contains("over the limit"));
        let sizes = RecipeLimits { allowed_sizes: Some([320, 640].into()), ..RecipeLimits::default() };
        assert!(Recipe::parse("w=640", &sizes).is_ok());
        assert!(Recipe::parse("w=641", &sizes).is_err());
        assert!(Recipe::parse("h=319", &sizes).is_err());
        assert!(crate::validate_key(&"k".repeat(crate::resolve::MAX_KEY_BYTES)).is_ok());
        assert!(crate::validate_key(&"k".repeat(crate::resolve::MAX_KEY_BYTES + 1)).is_err());
    }
}
