//! Fingerprints: the SHA-256 of an object's bytes, which names an asset. Identical bytes under
//! any number of keys are one asset.

use sha2::{Digest, Sha256};
use std::fmt;
use std::io::{self, Read};
use std::str::FromStr;

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    pub fn of(bytes: &[u8]) -> Fingerprint {
        Fingerprint(Sha256::digest(bytes).into())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", self.to_hex())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a fingerprint is 64 lowercase hex digits")]
pub struct BadFingerprint;

/// Parse 64 lowercase hex digits (the one spelling catg writes, so URLs and keys stay canonical).
pub fn decode_hex32(s: &str, out: &mut [u8; 32]) -> Result<(), BadFingerprint> {
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(BadFingerprint);
    }
    hex::decode_to_slice(s, out).map_err(|_| BadFingerprint)
}

impl FromStr for Fingerprint {
    type Err = BadFingerprint;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 32];
        decode_hex32(s, &mut out)?;
        Ok(Fingerprint(out))
    }
}

/// Hashes everything read through it: fingerprint a stream while also keeping its head (for
/// sniffing) or its whole body (when it is small enough to render), reading it only once.
#[derive(Debug)]
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader { inner, hasher: Sha256::new(), bytes: 0 }
    }

    /// Read the rest of the stream in constant memory and return the fingerprint and length.
    pub fn finish(mut self) -> io::Result<(Fingerprint, u64)> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match self.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok((Fingerprint(self.hasher.finalize().into()), self.bytes))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Fingerprint a whole stream in constant memory (a 64 KiB buffer).
pub fn fingerprint<R: Read>(reader: R) -> io::Result<(Fingerprint, u64)> {
    HashingReader::new(reader).finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_known_sha256_vectors() {
        let (fp, len) = fingerprint(&b"abc"[..]).expect("read");
        assert_eq!(fp.to_hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(len, 3);
        assert_eq!(Fingerprint::of(b"").to_hex(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    #[test]
    fn streaming_equals_one_shot_across_buffer_boundaries() {
        let data: Vec<u8> = (0..200_003u32).map(|i| (i * 31 % 251) as u8).collect();
        let (fp, len) = fingerprint(std::io::Cursor::new(&data)).expect("read");
        assert_eq!((fp, len), (Fingerprint::of(&data), data.len() as u64));
        let mut reader = HashingReader::new(&data[..]);
        let mut head = [0u8; 100];
        reader.read_exact(&mut head).expect("head");
        assert_eq!(reader.finish().expect("rest").0, fp);
    }

    #[test]
    fn parses_only_canonical_hex() {
        let fp = Fingerprint::of(b"x");
        assert_eq!(fp.to_hex().parse::<Fingerprint>(), Ok(fp));
        assert!(fp.to_hex().to_uppercase().parse::<Fingerprint>().is_err());
        assert!("abc".parse::<Fingerprint>().is_err());
        assert!("g".repeat(64).parse::<Fingerprint>().is_err());
    }
}
