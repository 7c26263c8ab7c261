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
        proptest::option::of(prop::sample::select(vec!["c", "n", "ne", "e", "se", "s", "sw", "w", "nw"])),
        proptest::option::of((0u16..=1000, 0u16..=1000, any::<bool>())),
        proptest::option::of(prop::sample::select(vec!["0", "90", "180", "270"])),
        proptest::option::of(prop::sample::select(vec!["h", "v", "hv"])),
    )
        .prop_map(|(w, h, fit, fmt, q, enlarge, gravity, focal, rot, flip)| {
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
        let ra = Recipe::parse(&a, &limits).expect("valid").resolve(Some("image/webp"), false);
        let rb = Recipe::parse(&b, &limits).expect("valid").resolve(Some("image/webp"), false);
        prop_assert_eq!(ra.canonical(), rb.canonical());
        let fp = Fingerprint::of(b"same image");
        prop_assert_eq!(CacheKey::derive(&fp, &ra), CacheKey::derive(&fp, &rb));
    }

    #[test]
    fn parse_of_canonical_round_trips((s, order, aliases, encode) in spellings().prop_map(|(s, o, _, a, e)| (s, o, a, e)), alpha in any::<bool>()) {
        let limits = RecipeLimits::default();
        let resolved = Recipe::parse(&write(&s, &order, &aliases, &encode), &limits).expect("valid").resolve(None, alpha);
        let canonical = resolved.canonical();
        let again = Recipe::parse(&canonical, &limits).expect("canonical parses").resolve(Some("image/avif"), !alpha);
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
            let canonical = recipe.resolve(None, false).canonical();
            prop_assert!(Recipe::parse(&canonical, &RecipeLimits::default()).is_ok());
        }
    }
}
