//! Property tests: every spelling of a recipe maps to one canonical form and one key, the
//! canonical form parses back to itself, and no input makes the parser panic.

use catg_core::{CacheKey, Fingerprint, Recipe, RecipeLimits};
use proptest::prelude::*;

/// One recipe, as a list of (parameter, value) pairs with each parameter's aliases.
#[derive(Debug, Clone)]
struct Spelling {
    params: Vec<(Vec<&'static str>, String)>,
}

fn recipe_params() -> impl Strategy<Value = Spelling> {
    (
        proptest::option::of(1u32..=8192),
        proptest::option::of(1u32..=8192),
        proptest::option::of(prop::sample::select(vec!["cover", "contain", "fill", "inside", "outside"])),
        proptest::option::of(prop::sample::select(vec!["jpeg", "png", "webp", "avif"])),
        proptest::option::of(1u8..=100),
        proptest::option::of(any::<bool>()),
        proptest::option::of(prop::sample::select(vec!["c", "n", "ne", "e", "se", "s", "sw", "w", "nw", "smart"])),
        proptest::option::of((0u16..=1000, 0u16..=1000, any::<bool>())),
        proptest::option::of(prop::sample::select(vec!["0", "90", "180", "270"])),
        proptest::option::of(prop::sample::select(vec!["h", "v", "hv"])),
        // Inside the 4000×3000 image the tests resolve for, or running past its edges.
        proptest::option::of((0u32..4000, 0u32..3000, 1u32..5000, 1u32..4000)),
        // blur, sharpen (hundredths), pad (one side or four), bg (with alpha or not, either case)
        (
            proptest::option::of(30u32..=10_000),
            proptest::option::of(30u32..=1_000),
            proptest::option::of(prop_oneof![(0u32..50).prop_map(|n| vec![n]), proptest::collection::vec(0u32..50, 4)]),
            proptest::option::of((any::<[u8; 4]>(), any::<bool>())),
        ),
    )
        .prop_map(|(w, h, fit, fmt, q, enlarge, gravity, focal, rot, flip, crop, (blur, sharpen, pad, bg))| {
            let mut params = Vec::new();
            if let Some(w) = w {
                params.push((vec!["w", "width"], w.to_string()));
            }
            if let Some(h) = h {
                params.push((vec!["h", "height"], h.to_string()));
            }
            if let Some(fit) = fit {
                params.push((vec!["fit"], fit.to_string()));
            }
            if let Some(fmt) = fmt {
                params.push((vec!["fmt", "format"], fmt.to_string()));
            }
            if let Some(q) = q {
                params.push((vec!["q", "quality"], q.to_string()));
            }
            if let Some(e) = enlarge {
                params.push((vec!["enlarge"], u8::from(e).to_string()));
            }
            if let Some(g) = gravity {
                params.push((vec!["g", "gravity"], g.to_string()));
            }
            if let Some((x, y, padded)) = focal {
                // Fractions with trailing zeros (or not): one point either way.
                let text = |t: u16| {
                    if padded {
                        format!("{}.{:03}", t / 1000, t % 1000)
                    } else {
                        format!("{}", f64::from(t) / 1000.0)
                    }
                };
                params.push((vec!["fp"], format!("{},{}", text(x), text(y))));
            }
            if let Some(rot) = rot {
                params.push((vec!["rot"], rot.to_string()));
            }
            if let Some(flip) = flip {
                params.push((vec!["flip"], flip.to_string()));
            }
            if let Some((x, y, w, h)) = crop {
                params.push((vec!["crop"], format!("{x},{y},{w},{h}")));
            }
            let decimal =
                |h: u32| if h % 100 == 0 { format!("{}", h / 100) } else { format!("{}.{:02}", h / 100, h % 100) };
            if let Some(sigma) = blur {
                params.push((vec!["blur"], decimal(sigma)));
            }
            if let Some(sigma) = sharpen {
                params.push((vec!["sharpen"], decimal(sigma)));
            }
            if let Some(sides) = pad {
                params.push((vec!["pad"], sides.iter().map(u32::to_string).collect::<Vec<_>>().join(",")));
            }
            if let Some(([r, g, b, a], upper)) = bg {
                let hex = format!("{r:02x}{g:02x}{b:02x}{a:02x}");
                params.push((vec!["bg", "background"], if upper { hex.to_uppercase() } else { hex }));
            }
            Spelling { params }
        })
}

/// Write a spelling in a given order, with a given choice of alias per parameter and with
/// characters percent-encoded where the choice says so.
fn write(spelling: &Spelling, order: &[usize], alias_choice: &[bool], encode: &[bool]) -> String {
    order
        .iter()
        .map(|&i| {
            let (names, value) = &spelling.params[i];
            let name = names[usize::from(alias_choice[i]) % names.len()];
            let value = if encode[i] { value.bytes().map(|b| format!("%{b:02X}")).collect() } else { value.clone() };
            format!("{name}={value}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn spellings() -> impl Strategy<Value = (Spelling, Vec<usize>, Vec<usize>, Vec<bool>, Vec<bool>)> {
    recipe_params().prop_flat_map(|s| {
        let n = s.params.len();
        let order: Vec<usize> = (0..n).collect();
        (
            Just(s),
            Just(order.clone()).prop_shuffle(),
            Just(order).prop_shuffle(),
            prop::collection::vec(any::<bool>(), n),
            prop::collection::vec(any::<bool>(), n),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_spelling_gives_one_canonical_form_and_key((s, order_a, order_b, aliases, encode) in spellings()) {
        let limits = RecipeLimits::default();
        let plain = vec![false; s.params.len()];
        let a = write(&s, &order_a, &plain, &plain);
        let b = write(&s, &order_b, &aliases, &encode);
        let ra = Recipe::parse(&a, &limits).expect("valid").resolve(Some("image/webp"), false, (4000, 3000)).expect("resolves");
        let rb = Recipe::parse(&b, &limits).expect("valid").resolve(Some("image/webp"), false, (4000, 3000)).expect("resolves");
        prop_assert_eq!(ra.canonical(), rb.canonical());
        let fp = Fingerprint::of(b"same image");
        prop_assert_eq!(CacheKey::derive(&fp, &ra), CacheKey::derive(&fp, &rb));
    }

    #[test]
    fn parse_of_canonical_round_trips((s, order, aliases, encode) in spellings().prop_map(|(s, o, _, a, e)| (s, o, a, e)), alpha in any::<bool>()) {
        let limits = RecipeLimits::default();
        let resolved = Recipe::parse(&write(&s, &order, &aliases, &encode), &limits).expect("valid").resolve(None, alpha, (4000, 3000)).expect("resolves");
        let canonical = resolved.canonical();
        let again = Recipe::parse(&canonical, &limits).expect("canonical parses").resolve(Some("image/avif"), alpha, (4000, 3000)).expect("resolves");
        prop_assert_eq!(again, resolved);
        prop_assert_eq!(again.canonical(), canonical);
    }

    #[test]
    fn the_parser_never_panics(query in ".{0,600}") {
        let _ = Recipe::parse(&query, &RecipeLimits::default());
    }

    #[test]
    fn the_parser_never_panics_on_near_misses(query in "[whqfitmoduyanlrgecx0-9=&%+;.-]{0,80}") {
        if let Ok(recipe) = Recipe::parse(&query, &RecipeLimits::default()) {
            if let Ok(resolved) = recipe.resolve(None, false, (4000, 3000)) {
                prop_assert!(Recipe::parse(&resolved.canonical(), &RecipeLimits::default()).is_ok());
            }
        }
    }

    /// `dpr` disappears into the sides: `w=W&dpr=D` is the variant `w=round(W·D)`.
    #[test]
    fn dpr_folds_into_the_sides(w in 1u32..=2048, h in proptest::option::of(1u32..=2048), hundredths in 100u32..=400) {
        let limits = RecipeLimits::default();
        let dpr = format!("{}.{:02}", hundredths / 100, hundredths % 100);
        let side = |n: u32| (n * hundredths + 50) / 100;
        let height = |n: Option<u32>| n.map(|n| format!("&h={n}")).unwrap_or_default();
        let with_dpr = Recipe::parse(&format!("dpr={dpr}&w={w}{}", height(h)), &limits).expect("valid");
        let folded = Recipe::parse(&format!("w={}{}", side(w), height(h.map(side))), &limits).expect("valid");
        prop_assert_eq!(with_dpr, folded);
        prop_assert_eq!(with_dpr.signed_form(), folded.signed_form());
    }
}
