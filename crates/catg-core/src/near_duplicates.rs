//! Near-duplicates: the same picture uploaded again resized, re-encoded or mildly recoloured.
//! Their 64-bit perceptual hashes differ in a few bits, where different pictures differ in
//! about half of them.
//!
//! Finding them must not scan every asset. The hash is cut into [`BANDS`] bands of 8 bits, and
//! each manifest indexes assets by band value. Two hashes within [`MAX_DISTANCE`] bits share at
//! least one band exactly: 8 bands cannot each hold one of at most 7 differences. So an asset's
//! candidates are the assets sharing a band with it, read from the index, and the distance
//! decides among them.

use crate::fingerprint::Fingerprint;

/// Bands of the hash, 8 bits each.
pub const BANDS: usize = 8;

/// The most bits two hashes may differ in for their pictures to count as one. Measured on the
/// sample photos (docs/decisions/near-duplicates.md): a half-size quality-60 copy differs by at
/// most 4 bits, two different photos by at least 24.
pub const MAX_DISTANCE: u32 = BANDS as u32 - 1;

/// The band keys of a hash: band `i` (0 = the high byte) with value `v` is `i << 8 | v`, so
/// every band's values have keys of their own.
pub fn band_keys(phash: u64) -> [u16; BANDS] {
    std::array::from_fn(|i| ((i as u16) << 8) | u16::from((phash >> (56 - 8 * i)) as u8))
}

/// How many bits two hashes differ in.
pub fn distance(a: u64, b: u64) -> u32 {
    (a ^ b).count_ones()
}

/// An indexed asset that shares a band with the one being placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub fingerprint: Fingerprint,
    pub phash: u64,
    /// The first of its group, when the candidate is itself a near-duplicate.
    pub near_duplicate_of: Option<Fingerprint>,
}

/// The group an asset with `phash` joins: the first asset of the nearest candidate's group
/// within [`MAX_DISTANCE`] (on a tie, the lowest fingerprint, so the answer does not depend on
/// the order the index returns). `None`: the asset starts its own group.
pub fn group_of(fingerprint: &Fingerprint, phash: u64, candidates: &[Candidate]) -> Option<Fingerprint> {
    nearest(fingerprint, phash, candidates.iter()).map(|c| c.near_duplicate_of.unwrap_or(c.fingerprint))
}

/// The nearest of `candidates` within [`MAX_DISTANCE`] of `phash`, other than `fingerprint`
/// itself; on a tie, the lowest fingerprint.
pub fn nearest<'a>(
    fingerprint: &Fingerprint,
    phash: u64,
    candidates: impl Iterator<Item = &'a Candidate>,
) -> Option<&'a Candidate> {
    candidates
        .filter(|c| c.fingerprint != *fingerprint)
        .map(|c| (distance(c.phash, phash), c))
        .filter(|(d, _)| *d <= MAX_DISTANCE)
        .min_by(|(da, a), (db, b)| da.cmp(db).then(a.fingerprint.to_hex().cmp(&b.fingerprint.to_hex())))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(n: u8) -> Fingerprint {
        Fingerprint::of(&[n])
    }

    #[test]
    fn any_two_hashes_within_the_distance_share_a_band() {
        // Spread the differences one per band: the worst case.
        let base = 0x0123_4567_89ab_cdefu64;
        let mut near = base;
        for band in 0..MAX_DISTANCE as usize {
            near ^= 1 << (56 - 8 * band);
        }
        assert_eq!(distance(base, near), MAX_DISTANCE);
        let shared = band_keys(base).iter().zip(band_keys(near)).filter(|(a, b)| **a == *b).count();
        assert_eq!(shared, 1);
        // One more difference and no band need agree.
        let far = near ^ (1 << 0);
        assert!(band_keys(base).iter().zip(band_keys(far)).all(|(a, b)| *a != b));
    }

    #[test]
    fn band_keys_name_the_band_and_its_value() {
        let keys = band_keys(0xff00_0000_0000_00a5);
        assert_eq!(keys[0], 0x00ff);
        assert_eq!(keys[1], 0x0100);
        assert_eq!(keys[7], 0x07a5);
    }

    #[test]
    fn an_asset_joins_the_group_of_its_nearest_candidate() {
        let first = Candidate { fingerprint: fp(1), phash: 0, near_duplicate_of: None };
        let member = Candidate { fingerprint: fp(2), phash: 0b11, near_duplicate_of: Some(fp(1)) };
        let stranger = Candidate { fingerprint: fp(3), phash: 0xff, near_duplicate_of: None };
        // Nearest is the member (1 bit): the group's first asset is named, not the member.
        assert_eq!(group_of(&fp(9), 0b111, &[stranger, first, member]), Some(fp(1)));
        // Too far from everything: a group of its own.
        assert_eq!(group_of(&fp(9), u64::MAX, &[first, member, stranger]), None);
        // An asset is never its own near-duplicate.
        assert_eq!(group_of(&fp(1), 0, &[first]), None);
    }
}
