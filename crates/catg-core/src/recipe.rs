//! Recipes: what a variant is, parsed strictly from a URL query string, and its canonical form.
//!
//! Every spelling of the same request (aliases, parameter order, defaults left out or written
//! out, `fmt=auto` resolved to what the client accepts) maps to one canonical string, and so to
//! one cache key: junk in a URL cannot multiply variants.

use crate::negotiate::negotiate;
use catg_image::{Anchor, Fit, FocalPoint, Gravity, Orientation, OutputFormat, RenderSpec, Resize};
use percent_encoding::percent_decode_str;
use std::collections::BTreeSet;
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
}

impl Default for RecipeLimits {
    fn default() -> Self {
        RecipeLimits { max_width: 8192, max_height: 8192, allowed_sizes: None, max_query_len: 512 }
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
    pub focal: Option<FocalPoint>,
    /// `rot` (clockwise, after EXIF orientation), then `flip`.
    pub rotate: Orientation,
    pub flip: Orientation,
}

/// A recipe with everything decided: the thing a cache key names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResolvedRecipe {
    pub resize: Resize,
    pub format: OutputFormat,
    /// `None` only for PNG, which is lossless.
    pub quality: Option<u8>,
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
        if self.gravity != Gravity::Centre {
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
        out
    }

    /// Parse a query string (with or without its leading `?`).
    pub fn parse(query: &str, limits: &RecipeLimits) -> Result<Recipe, RecipeError> {
        let query = query.strip_prefix('?').unwrap_or(query);
        if query.len() > limits.max_query_len {
            return Err(invalid(format!(
                "the recipe is {} bytes, over the limit of {}",
                query.len(),
                limits.max_query_len
            )));
        }
        let mut recipe = Recipe::default();
        if query.is_empty() {
            return Ok(recipe);
        }
        let mut seen: Vec<(Param, String)> = Vec::new();
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
                    "unknown parameter {}; expected w (width), h (height), fit, fmt (format), q (quality), enlarge, g (gravity), fp, rot or flip",
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
            recipe.set(param, &value, limits)?;
            seen.push((param, name));
        }
        Ok(recipe)
    }

    fn set(&mut self, param: Param, value: &str, limits: &RecipeLimits) -> Result<(), RecipeError> {
        match param {
            Param::Width => self.width = Some(pixels(param, value, limits.max_width, limits)?),
            Param::Height => self.height = Some(pixels(param, value, limits.max_height, limits)?),
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
                        invalid(format!("`fmt` must be jpeg, png, webp, avif or auto, got {}", shown(value)))
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
                self.gravity = Gravity::parse(value).ok_or_else(|| {
                    invalid(format!("`g` must be one of c, n, ne, e, se, s, sw, w, nw, got {}", shown(value)))
                })?
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
        }
        Ok(())
    }

    /// Decide everything left open: the format (from `Accept` for `fmt=auto`), the quality,
    /// and the parameters that cannot matter (`fit` without both sides, `q` for PNG).
    pub fn resolve(&self, accept: Option<&str>, has_alpha: bool) -> ResolvedRecipe {
        let format = match self.format {
            FormatChoice::Fixed(format) => format,
            FormatChoice::Auto => negotiate(accept, has_alpha),
        };
        let both_sides = self.width.is_some() && self.height.is_some();
        let quality = format.default_quality().map(|default| self.quality.unwrap_or(default));
        let fit = if both_sides { self.fit } else { Fit::default() };
        // Only a crop has somewhere to keep; a focal point outranks a gravity.
        let anchor = match self.focal {
            _ if !(both_sides && fit == Fit::Cover) => Anchor::default(),
            Some(point) => Anchor::Focal(point),
            None => Anchor::Gravity(self.gravity),
        };
        let turn = self.rotate.then(self.flip);
        ResolvedRecipe {
            resize: Resize { width: self.width, height: self.height, fit, enlarge: self.enlarge, anchor, turn },
            format,
            quality,
        }
    }
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
    if value.is_empty() || value.len() > 9 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(format!("`{}` must be a whole number, got {}", param.name(), shown(value))));
    }
    value.parse().map_err(|_| invalid(format!("`{}` must be a whole number, got {}", param.name(), shown(value))))
}

fn pixels(param: Param, value: &str, max: u32, limits: &RecipeLimits) -> Result<u32, RecipeError> {
    let n = number(param, value)?;
    if n == 0 || n > max {
        return Err(invalid(format!("`{}` must be between 1 and {max} pixels, got {n}", param.name())));
    }
    if let Some(allowed) = &limits.allowed_sizes {
        if !allowed.contains(&n) {
            let list: Vec<String> = allowed.iter().map(u32::to_string).collect();
            return Err(invalid(format!(
                "`{}={n}` is not an allowed size; allowed: {}",
                param.name(),
                list.join(", ")
            )));
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
        let mut recipe = ResolvedRecipe { resize: Resize::default(), format: OutputFormat::Png, quality: None };
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
                _ => return Err(invalid(format!("{} is not a canonical recipe", shown(canonical)))),
            }
        }
        if recipe.canonical() != canonical {
            return Err(invalid(format!("{} is not a canonical recipe", shown(canonical))));
        }
        Ok(recipe)
    }

    pub fn render_spec(&self) -> RenderSpec {
        RenderSpec { resize: self.resize, format: self.format, quality: self.quality.unwrap_or(100) }
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
        }
        let (rotate, mirrored) = turn_parts(self.resize.turn);
        if rotate != Orientation::Normal {
            write!(f, "&rot={}", rotation_degrees(rotate))?;
        }
        if mirrored {
            write!(f, "&flip=h")?;
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
        parse(q).expect("valid").resolve(None, false).canonical()
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
            "w=9&rot=270&flip=h",
            "w=9&flip=h",
            "h=2&rot=90",
        ] {
            let resolved = parse(q).expect("valid").resolve(None, false);
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
        assert_eq!(canonical("fmt=avif&enlarge=1&w=10&h=20&fit=fill"), "w=10&h=20&fit=fill&fmt=avif&q=70&enlarge=1");
    }

    #[test]
    fn auto_resolves_from_accept_before_the_key_is_made() {
        let recipe = parse("w=100").expect("valid");
        assert_eq!(recipe.resolve(Some("image/avif,image/webp"), false).format, OutputFormat::Avif);
        assert_eq!(recipe.resolve(Some("image/webp"), true).canonical(), canonical("w=100&fmt=webp"));
        assert_eq!(recipe.resolve(None, true).format, OutputFormat::Png);
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
        assert_eq!(error("fmt=gif"), "`fmt` must be jpeg, png, webp, avif or auto, got \"gif\"");
        assert_eq!(error("enlarge=yes"), "`enlarge` must be 0 or 1, got \"yes\"");
        assert_eq!(error("w=1&w=2"), "\"w\" is given twice; give `w` once");
        assert_eq!(error("w=1&width=2"), "\"w\" and \"width\" are the same parameter; give `w` once");
        assert!(error("blur=3").starts_with("unknown parameter \"blur\""));
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
