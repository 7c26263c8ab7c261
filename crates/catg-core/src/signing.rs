//! Signed URLs: with signing on, only URLs minted by someone holding a key are rendered, so an
//! attacker cannot make new variants (or probe for keys) by editing query strings.
//!
//! A signed URL carries one extra parameter, `sig=<key id>.<expiry>.<mac>`:
//! - `key id` names one of the configured keys; several can be active at once, so keys rotate
//!   without breaking URLs already handed out (add the new key, sign with it, retire the old
//!   one once its URLs have aged out);
//! - `expiry` is a Unix time in seconds after which the URL is refused, or `-` for none;
//! - `mac` is HMAC-SHA256, base64url without padding, over
//!   `catg-sig-v1 \n <target> \n <recipe> \n <expiry>`, where `<target>` is `key:<source key>`
//!   or `asset:<fingerprint>` and `<recipe>` is [`Recipe::signed_form`]: the parameters in a
//!   fixed order with aliases resolved, so `?width=400&fmt=webp` and `?fmt=webp&w=400` verify
//!   alike and `sig` may sit anywhere in the query.
//!
//! Verification happens before any store is touched and compares MACs in constant time.

use crate::recipe::Recipe;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// The query parameter that carries the signature.
pub const SIG_PARAM: &str = "sig";

/// What a signature of an info URL (`/_/{fingerprint}/info`, `/{key}?info=1`) covers in place
/// of a recipe.
pub const INFO_SIGNED_FORM: &str = "info=1";

const DOMAIN: &str = "catg-sig-v1";
/// Shorter secrets are refused: HMAC-SHA256 is only as strong as its key.
pub const MIN_SECRET_BYTES: usize = 32;

/// What a URL points at, as the signature names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignedTarget<'a> {
    Key(&'a str),
    /// A fingerprint in lowercase hex.
    Asset(&'a str),
}

/// The active signing keys; the first signs, all verify.
#[derive(Clone)]
pub struct SigningKeys {
    keys: Vec<(String, Vec<u8>)>,
}

impl fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the secrets.
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("SigningKeys").field("ids", &ids).finish()
    }
}

/// Why a request's signature was refused. The public message is deliberately vague about
/// which part failed, except for expiry, which an honest client needs to know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("this URL needs a signature (`sig`)")]
    Missing,
    #[error("the URL's signature is not valid")]
    Invalid,
    #[error("the URL's signature has expired")]
    Expired,
}

impl SigningKeys {
    /// Parse `id:secret[,id:secret…]`, secrets in base64url or standard base64 (at least 32
    /// bytes decoded). Key ids are 1-32 characters of `A-Z a-z 0-9 _ -`.
    pub fn parse(spec: &str) -> Result<SigningKeys, String> {
        let mut keys: Vec<(String, Vec<u8>)> = Vec::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (id, secret) =
                entry.split_once(':').ok_or("each key is id:secret (the secret in base64), separated by commas")?;
            let id = id.trim();
            if id.is_empty()
                || id.len() > 32
                || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err("a key id is 1-32 characters of A-Z, a-z, 0-9, _ and -".into());
            }
            let secret = decode_secret(secret.trim()).ok_or("a secret is not valid base64")?;
            if secret.len() < MIN_SECRET_BYTES {
                return Err(format!(
                    "the secret of key {id:?} is {} bytes; use at least {MIN_SECRET_BYTES}",
                    secret.len()
                ));
            }
            if keys.iter().any(|(other, _)| other == id) {
                return Err(format!("key id {id:?} is given twice"));
            }
            keys.push((id.to_string(), secret));
        }
        if keys.is_empty() {
            return Err("no keys given".into());
        }
        Ok(SigningKeys { keys })
    }

    /// The `sig` value for `target` and `recipe`, signed with the first key.
    pub fn sign(&self, target: SignedTarget<'_>, recipe: &Recipe, expires: Option<u64>) -> String {
        self.sign_form(target, &recipe.signed_form(), expires)
    }

    /// Check a request's `sig` value (if any) against `target` and `recipe` at time `now`
    /// (Unix seconds).
    pub fn verify(
        &self,
        target: SignedTarget<'_>,
        recipe: &Recipe,
        sig: Option<&str>,
        now: u64,
    ) -> Result<(), SignatureError> {
        self.verify_form(target, &recipe.signed_form(), sig, now)
    }

    /// [`SigningKeys::sign`] for a request that is not a recipe (the info URLs sign
    /// [`INFO_SIGNED_FORM`]); a recipe's signed form always starts `w=`, so the two never meet.
    pub fn sign_form(&self, target: SignedTarget<'_>, form: &str, expires: Option<u64>) -> String {
        let (id, secret) = &self.keys[0];
        let expiry = expires.map_or_else(|| "-".to_string(), |t| t.to_string());
        let mac = mac(secret, target, form, &expiry).finalize().into_bytes();
        format!("{id}.{expiry}.{}", URL_SAFE_NO_PAD.encode(mac))
    }

    /// [`SigningKeys::verify`] for a signed form of [`SigningKeys::sign_form`].
    pub fn verify_form(
        &self,
        target: SignedTarget<'_>,
        form: &str,
        sig: Option<&str>,
        now: u64,
    ) -> Result<(), SignatureError> {
        let sig = sig.ok_or(SignatureError::Missing)?;
        let mut parts = sig.splitn(3, '.');
        let (Some(id), Some(expiry), Some(encoded)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(SignatureError::Invalid);
        };
        let secret = self.keys.iter().find(|(k, _)| k == id).map(|(_, s)| s).ok_or(SignatureError::Invalid)?;
        let expires = match expiry {
            "-" => None,
            digits if !digits.is_empty() && digits.len() <= 12 && digits.bytes().all(|b| b.is_ascii_digit()) => {
                Some(digits.parse::<u64>().map_err(|_| SignatureError::Invalid)?)
            }
            _ => return Err(SignatureError::Invalid),
        };
        let given = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| SignatureError::Invalid)?;
        // `verify_slice` compares in constant time.
        mac(secret, target, form, expiry).verify_slice(&given).map_err(|_| SignatureError::Invalid)?;
        // Expiry is checked after the MAC, so an expiry cannot be probed without a valid MAC.
        match expires {
            Some(t) if t < now => Err(SignatureError::Expired),
            _ => Ok(()),
        }
    }
}

fn mac(secret: &[u8], target: SignedTarget<'_>, form: &str, expiry: &str) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC takes a key of any length");
    let target = match target {
        SignedTarget::Key(key) => format!("key:{key}"),
        SignedTarget::Asset(hex) => format!("asset:{hex}"),
    };
    mac.update(format!("{DOMAIN}\n{target}\n{form}\n{expiry}").as_bytes());
    mac
}

fn decode_secret(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .ok()
        .or_else(|| base64::engine::general_purpose::STANDARD.decode(text).ok())
}

/// Take the `sig` parameter out of a raw query string: the rest is the recipe. A second `sig`
/// makes the whole value ambiguous and is refused as invalid.
pub fn split_signature(query: &str) -> Result<(String, Option<String>), SignatureError> {
    let query = query.strip_prefix('?').unwrap_or(query);
    let mut rest = Vec::new();
    let mut sig = None;
    for piece in query.split('&') {
        match piece.split_once('=') {
            Some((SIG_PARAM, value)) => {
                if sig.replace(value.to_string()).is_some() {
                    return Err(SignatureError::Invalid);
                }
            }
            _ => rest.push(piece),
        }
    }
    Ok((rest.join("&"), sig))
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::RecipeLimits;

    const SECRET_A: &str = "c2VjcmV0LWtleS1hLWZvci10ZXN0cy0wMTIzNDU2Nzg5YWI"; // 35 bytes
    const SECRET_B: &str = "c2VjcmV0LWtleS1iLWZvci10ZXN0cy0wMTIzNDU2Nzg5YWI";

    fn keys(spec: &str) -> SigningKeys {
        SigningKeys::parse(spec).expect("valid keys")
    }

    fn recipe(q: &str) -> Recipe {
        Recipe::parse(q, &RecipeLimits::default()).expect("valid recipe")
    }

    #[test]
    fn a_signature_verifies_for_the_same_image_and_recipe_in_any_spelling() {
        let k = keys(&format!("a:{SECRET_A}"));
        let sig = k.sign(SignedTarget::Key("cats/tom.jpg"), &recipe("w=400&fmt=webp"), None);
        for q in ["w=400&fmt=webp", "fmt=webp&width=400", "format=webp&w=400"] {
            assert_eq!(k.verify(SignedTarget::Key("cats/tom.jpg"), &recipe(q), Some(&sig), 0), Ok(()), "{q}");
        }
    }

    #[test]
    fn any_change_to_key_recipe_expiry_or_mac_is_refused() {
        let k = keys(&format!("a:{SECRET_A}"));
        let r = recipe("w=400&fmt=webp");
        let t = SignedTarget::Key("cats/tom.jpg");
        let sig = k.sign(t, &r, Some(2_000_000_000));
        let now = 1_900_000_000;
        assert_eq!(k.verify(t, &r, Some(&sig), now), Ok(()));
        assert_eq!(k.verify(SignedTarget::Key("cats/tim.jpg"), &r, Some(&sig), now), Err(SignatureError::Invalid));
        assert_eq!(k.verify(SignedTarget::Asset("cats/tom.jpg"), &r, Some(&sig), now), Err(SignatureError::Invalid));
        assert_eq!(k.verify(t, &recipe("w=401&fmt=webp"), Some(&sig), now), Err(SignatureError::Invalid));
        assert_eq!(k.verify(t, &recipe("w=400&fmt=webp&q=90"), Some(&sig), now), Err(SignatureError::Invalid));
        let later = sig.replace("2000000000", "2000000001");
        assert_eq!(k.verify(t, &r, Some(&later), now), Err(SignatureError::Invalid));
        let never = sig.replace("2000000000", "-");
        assert_eq!(k.verify(t, &r, Some(&never), now), Err(SignatureError::Invalid));
        let mut flipped = sig.clone().into_bytes();
        let last = flipped.len() - 2;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).expect("ascii");
        assert_eq!(k.verify(t, &r, Some(&flipped), now), Err(SignatureError::Invalid));
        assert_eq!(k.verify(t, &r, None, now), Err(SignatureError::Missing));
        for junk in ["", ".", "a..", "a.-.", "a.x.AAAA", "zz.-.AAAA", "a.-.!!!!", "a.99999999999999.AAAA"] {
            assert_eq!(k.verify(t, &r, Some(junk), now), Err(SignatureError::Invalid), "{junk:?}");
        }
    }

    #[test]
    fn expiry_is_enforced_to_the_second() {
        let k = keys(&format!("a:{SECRET_A}"));
        let (t, r) = (SignedTarget::Asset("ab12"), recipe("w=10&fmt=png"));
        let sig = k.sign(t, &r, Some(1000));
        assert_eq!(k.verify(t, &r, Some(&sig), 1000), Ok(()));
        assert_eq!(k.verify(t, &r, Some(&sig), 1001), Err(SignatureError::Expired));
    }

    #[test]
    fn rotation_old_and_new_keys_both_verify_and_the_first_signs() {
        let old = keys(&format!("old:{SECRET_A}"));
        let both = keys(&format!("new:{SECRET_B},old:{SECRET_A}"));
        let new_only = keys(&format!("new:{SECRET_B}"));
        let (t, r) = (SignedTarget::Key("k"), recipe("w=10"));
        let by_old = old.sign(t, &r, None);
        let by_new = both.sign(t, &r, None);
        assert!(by_new.starts_with("new."));
        assert_eq!(both.verify(t, &r, Some(&by_old), 0), Ok(()));
        assert_eq!(both.verify(t, &r, Some(&by_new), 0), Ok(()));
        assert_eq!(new_only.verify(t, &r, Some(&by_old), 0), Err(SignatureError::Invalid));
        // Same id, different secret: refused.
        let forged = by_old.replacen("old.", "new.", 1);
        assert_eq!(both.verify(t, &r, Some(&forged), 0), Err(SignatureError::Invalid));
    }

    #[test]
    fn key_specs_are_checked() {
        assert!(SigningKeys::parse("").is_err());
        assert!(SigningKeys::parse("nocolon").is_err());
        assert!(SigningKeys::parse("a:c2hvcnQ").is_err(), "short secrets are refused");
        assert!(SigningKeys::parse(&format!("bad id:{SECRET_A}")).is_err());
        assert!(SigningKeys::parse(&format!("a:{SECRET_A},a:{SECRET_B}")).is_err());
        assert!(SigningKeys::parse(&format!("a:{SECRET_A}, b:{SECRET_B}")).is_ok());
        assert!(!format!("{:?}", keys(&format!("a:{SECRET_A}"))).contains(SECRET_A));
    }

    #[test]
    fn sig_is_split_from_the_recipe_wherever_it_is() {
        assert_eq!(split_signature("w=1&sig=x&h=2"), Ok(("w=1&h=2".into(), Some("x".into()))));
        assert_eq!(split_signature("?sig=x"), Ok((String::new(), Some("x".into()))));
        assert_eq!(split_signature("w=1"), Ok(("w=1".into(), None)));
        assert_eq!(split_signature("sig=x&sig=y"), Err(SignatureError::Invalid));
    }
}
