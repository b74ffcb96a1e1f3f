//! Public keys that other parties register with us (an application's private_key_jwt
//! credentials): read from PEM — an X.509 SubjectPublicKeyInfo (`PUBLIC KEY`), a PKCS#1
//! `RSA PUBLIC KEY`, or the key of a `CERTIFICATE` — and kept as SubjectPublicKeyInfo DER.
//! A small DER reader of our own: the three shapes are a few nested sequences, and the
//! certificate is not verified (it only carries the key and its expiry).

use crate::{JoseError, Jwk, VerifyingKey, b64, thumbprint};

/// RSA keys shorter than this are refused (NIST SP 800-131A).
pub const MIN_RSA_BITS: usize = 2048;
/// PEM text longer than this is refused unread (a 8192-bit key's certificate fits).
pub const MAX_PEM_BYTES: usize = 16 * 1024;

const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

/// A registered public key: its SubjectPublicKeyInfo DER (what is stored), its JWK with
/// the RFC 7638 thumbprint as `kid`, and the certificate's end when it came in one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub spki: Vec<u8>,
    pub jwk: Jwk,
    pub not_after: Option<i64>,
}

impl PublicKey {
    /// Reads one PEM block; anything but a supported key (RSA ≥ 2048 bits, P-256,
    /// Ed25519) is `KeyRejected`.
    pub fn from_pem(text: &str) -> Result<Self, JoseError> {
        if text.len() > MAX_PEM_BYTES {
            return Err(JoseError::KeyRejected);
        }
        let (label, der) = pem_block(text)?;
        match label.as_str() {
            "PUBLIC KEY" => Self::from_spki(&der, None),
            "RSA PUBLIC KEY" => {
                let mut algorithm = der_tlv(0x06, OID_RSA);
                algorithm.extend(der_tlv(0x05, &[]));
                let mut bits = vec![0];
                bits.extend(&der);
                let mut body = der_tlv(0x30, &algorithm);
                body.extend(der_tlv(0x03, &bits));
                Self::from_spki(&der_tlv(0x30, &body), None)
            }
            "CERTIFICATE" => {
                let (spki, not_after) = certificate_key(&der)?;
                Self::from_spki(spki, Some(not_after))
            }
            _ => Err(JoseError::KeyRejected),
        }
    }

    /// Reads a SubjectPublicKeyInfo (as stored).
    pub fn from_spki(spki: &[u8], not_after: Option<i64>) -> Result<Self, JoseError> {
        let jwk = spki_jwk(spki)?;
        // Parsed once by the verifier too: a key aws-lc-rs refuses is refused here.
        VerifyingKey::from_jwk(&jwk)?;
        Ok(PublicKey {
            spki: spki.to_vec(),
            jwk,
            not_after,
        })
    }

    pub fn kid(&self) -> &str {
        self.jwk.kid.as_deref().unwrap_or_default()
    }

    /// The algorithm assertions signed with this key use.
    pub fn alg(&self) -> &str {
        self.jwk.alg.as_deref().unwrap_or_default()
    }

    pub fn verifying_key(&self) -> Result<VerifyingKey, JoseError> {
        VerifyingKey::from_jwk(&self.jwk)
    }
}

/// The label and bytes of the one PEM block in `text` (surrounding text ignored).
fn pem_block(text: &str) -> Result<(String, Vec<u8>), JoseError> {
    use base64::Engine;
    let begin = text.find("-----BEGIN ").ok_or(JoseError::KeyRejected)?;
    let rest = &text[begin + 11..];
    let label_end = rest.find("-----").ok_or(JoseError::KeyRejected)?;
    let label = rest[..label_end].to_string();
    let body = &rest[label_end + 5..];
    let end_marker = format!("-----END {label}-----");
    let end = body.find(&end_marker).ok_or(JoseError::KeyRejected)?;
    if body[end + end_marker.len()..].contains("-----BEGIN ") {
        // One key per credential: a second block would be silently ignored otherwise.
        return Err(JoseError::KeyRejected);
    }
    let encoded: String = body[..end]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| JoseError::KeyRejected)?;
    Ok((label, der))
}

/// One DER element: its tag, its contents, and what follows it.
fn read_tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8]), JoseError> {
    let bad = || JoseError::KeyRejected;
    let (&tag, rest) = input.split_first().ok_or_else(bad)?;
    let (&first, rest) = rest.split_first().ok_or_else(bad)?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 3 || rest.len() < count {
            return Err(bad());
        }
        let len = rest[..count]
            .iter()
            .fold(0usize, |n, b| (n << 8) | usize::from(*b));
        (len, &rest[count..])
    };
    if rest.len() < len {
        return Err(bad());
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

/// The contents of the element at the start of `input`, which must have `tag`.
fn expect(input: &[u8], tag: u8) -> Result<(&[u8], &[u8]), JoseError> {
    let (found, contents, rest) = read_tlv(input)?;
    if found != tag {
        return Err(JoseError::KeyRejected);
    }
    Ok((contents, rest))
}

fn der_tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = contents.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend([0x81, len as u8]);
    } else {
        out.extend([0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend(contents);
    out
}

/// A big-endian unsigned DER integer's magnitude, without its sign byte.
fn unsigned(integer: &[u8]) -> &[u8] {
    let start = integer
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(integer.len());
    &integer[start..]
}

/// The JWK of a SubjectPublicKeyInfo, `kid` its thumbprint and `alg` the one it signs with.
fn spki_jwk(spki: &[u8]) -> Result<Jwk, JoseError> {
    let (info, trailing) = expect(spki, 0x30)?;
    if !trailing.is_empty() {
        return Err(JoseError::KeyRejected);
    }
    let (algorithm, rest) = expect(info, 0x30)?;
    let (bits, rest) = expect(rest, 0x03)?;
    if !rest.is_empty() {
        return Err(JoseError::KeyRejected);
    }
    let key = match bits.split_first() {
        Some((0, key)) => key,
        _ => return Err(JoseError::KeyRejected),
    };
    let (oid, params) = expect(algorithm, 0x06)?;
    let empty = Jwk {
        kty: String::new(),
        use_: None,
        alg: None,
        kid: None,
        n: None,
        e: None,
        crv: None,
        x: None,
        y: None,
        x5c: None,
        x5t: None,
    };
    let mut jwk = match oid {
        _ if oid == OID_RSA => {
            let (rsa, _) = expect(key, 0x30)?;
            let (n, rest) = expect(rsa, 0x02)?;
            let (e, _) = expect(rest, 0x02)?;
            let (n, e) = (unsigned(n), unsigned(e));
            let bits = n.len() * 8 - n.first().map_or(8, |b| b.leading_zeros() as usize);
            if bits < MIN_RSA_BITS {
                return Err(JoseError::KeyRejected);
            }
            Jwk {
                kty: "RSA".into(),
                alg: Some("RS256".into()),
                n: Some(b64(n)),
                e: Some(b64(e)),
                ..empty
            }
        }
        _ if oid == OID_EC => {
            let (curve, _) = expect(params, 0x06)?;
            if curve != OID_P256 || key.len() != 65 || key[0] != 0x04 {
                return Err(JoseError::KeyRejected);
            }
            Jwk {
                kty: "EC".into(),
                alg: Some("ES256".into()),
                crv: Some("P-256".into()),
                x: Some(b64(&key[1..33])),
                y: Some(b64(&key[33..])),
                ..empty
            }
        }
        _ if oid == OID_ED25519 => {
            if key.len() != 32 {
                return Err(JoseError::KeyRejected);
            }
            Jwk {
                kty: "OKP".into(),
                alg: Some("EdDSA".into()),
                crv: Some("Ed25519".into()),
                x: Some(b64(key)),
                ..empty
            }
        }
        _ => return Err(JoseError::KeyRejected),
    };
    jwk.kid = Some(thumbprint(&jwk));
    Ok(jwk)
}

/// A certificate's SubjectPublicKeyInfo and the end of its validity (Unix seconds).
fn certificate_key(der: &[u8]) -> Result<(&[u8], i64), JoseError> {
    let (certificate, _) = expect(der, 0x30)?;
    let (tbs, _) = expect(certificate, 0x30)?;
    let mut rest = tbs;
    // [0] version, optional.
    if rest.first() == Some(&0xa0) {
        rest = read_tlv(rest)?.2;
    }
    let (_serial, rest) = expect(rest, 0x02)?;
    let (_signature, rest) = expect(rest, 0x30)?;
    let (_issuer, rest) = expect(rest, 0x30)?;
    let (validity, rest) = expect(rest, 0x30)?;
    let (_subject, rest) = expect(rest, 0x30)?;
    let (tag, _, after) = read_tlv(rest)?;
    if tag != 0x30 {
        return Err(JoseError::KeyRejected);
    }
    let spki = &rest[..rest.len() - after.len()];
    let (_, _, validity_rest) = read_tlv(validity)?;
    let (tag, not_after, _) = read_tlv(validity_rest)?;
    Ok((spki, time_of(tag, not_after)?))
}

/// UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`) as Unix seconds.
fn time_of(tag: u8, text: &[u8]) -> Result<i64, JoseError> {
    let text = std::str::from_utf8(text).map_err(|_| JoseError::KeyRejected)?;
    let digits = text.strip_suffix('Z').ok_or(JoseError::KeyRejected)?;
    let full = match (tag, digits.len()) {
        (0x17, 12) => {
            let yy: i32 = digits[..2].parse().map_err(|_| JoseError::KeyRejected)?;
            // RFC 5280 §4.1.2.5.1: 50–99 are 19xx.
            let century = if yy >= 50 { "19" } else { "20" };
            format!("{century}{digits}")
        }
        (0x18, 14) => digits.to_string(),
        _ => return Err(JoseError::KeyRejected),
    };
    if !full.bytes().all(|b| b.is_ascii_digit()) {
        return Err(JoseError::KeyRejected);
    }
    let number = |range: std::ops::Range<usize>| -> Result<u16, JoseError> {
        full[range].parse().map_err(|_| JoseError::KeyRejected)
    };
    let month = time::Month::try_from(number(4..6)? as u8).map_err(|_| JoseError::KeyRejected)?;
    let date = time::Date::from_calendar_date(i32::from(number(0..4)?), month, number(6..8)? as u8)
        .map_err(|_| JoseError::KeyRejected)?;
    let at = date
        .with_hms(
            number(8..10)? as u8,
            number(10..12)? as u8,
            number(12..14)? as u8,
        )
        .map_err(|_| JoseError::KeyRejected)?;
    Ok(at.assume_utc().unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Algorithm, SigningKey};
    use base64::Engine;

    fn pem(label: &str, der: &[u8]) -> String {
        let body = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            lines.join("\n")
        )
    }

    #[test]
    fn an_rsa_key_from_a_certificate_spki_and_pkcs1_is_the_same_key() {
        let (key, pkcs8) = SigningKey::generate(Algorithm::Rs256).unwrap();
        let cert = crate::certificate::self_signed_rsa(&pkcs8, 1_700_000_000).unwrap();
        let from_cert = PublicKey::from_pem(&pem("CERTIFICATE", &cert)).unwrap();
        assert_eq!(
            from_cert.kid(),
            key.kid(),
            "the kid is the RFC 7638 thumbprint"
        );
        assert_eq!(from_cert.alg(), "RS256");
        assert!(from_cert.not_after.unwrap() > 1_700_000_000);
        let from_spki = PublicKey::from_pem(&pem("PUBLIC KEY", &from_cert.spki)).unwrap();
        assert_eq!(from_spki.jwk, from_cert.jwk);
        assert_eq!(from_spki.not_after, None);
        // PKCS#1: the SPKI's bit string.
        let (info, _) = expect(&from_cert.spki, 0x30).unwrap();
        let (_, rest) = expect(info, 0x30).unwrap();
        let (bits, _) = expect(rest, 0x03).unwrap();
        let from_pkcs1 = PublicKey::from_pem(&pem("RSA PUBLIC KEY", &bits[1..])).unwrap();
        assert_eq!(from_pkcs1.spki, from_cert.spki);
        // What the key signs, the stored SPKI verifies.
        let token = key
            .sign_jwt("JWT", &serde_json::json!({"sub": "a"}))
            .unwrap();
        let stored = PublicKey::from_spki(&from_spki.spki, None).unwrap();
        assert!(stored.verifying_key().unwrap().verify(&token).is_ok());
    }

    #[test]
    fn ec_and_ed25519_keys_are_read() {
        for alg in [Algorithm::Es256, Algorithm::EdDsa] {
            let (key, _) = SigningKey::generate(alg).unwrap();
            let jwk = key.public_jwk();
            let (oid, params, point) = match alg {
                Algorithm::Es256 => {
                    let mut point = vec![0x04];
                    point.extend(crate::b64_decode(jwk.x.as_deref().unwrap()).unwrap());
                    point.extend(crate::b64_decode(jwk.y.as_deref().unwrap()).unwrap());
                    (OID_EC, der_tlv(0x06, OID_P256), point)
                }
                _ => (
                    OID_ED25519,
                    Vec::new(),
                    crate::b64_decode(jwk.x.as_deref().unwrap()).unwrap(),
                ),
            };
            let mut algorithm = der_tlv(0x06, oid);
            algorithm.extend(params);
            let mut bits = vec![0];
            bits.extend(point);
            let mut body = der_tlv(0x30, &algorithm);
            body.extend(der_tlv(0x03, &bits));
            let spki = der_tlv(0x30, &body);
            let read = PublicKey::from_pem(&pem("PUBLIC KEY", &spki)).unwrap();
            assert_eq!(read.kid(), key.kid());
            assert_eq!(read.alg(), alg.as_str());
            let token = key
                .sign_jwt("JWT", &serde_json::json!({"sub": "a"}))
                .unwrap();
            assert!(read.verifying_key().unwrap().verify(&token).is_ok());
        }
    }

    #[test]
    fn malformed_and_weak_keys_are_refused() {
        let (_, pkcs8) = SigningKey::generate(Algorithm::Rs256).unwrap();
        let cert = crate::certificate::self_signed_rsa(&pkcs8, 1_700_000_000).unwrap();
        let good = PublicKey::from_pem(&pem("CERTIFICATE", &cert)).unwrap();
        let mut cut = good.spki.clone();
        cut.truncate(cut.len() - 10);
        // A 1024-bit modulus: the 2048-bit one with its first half cut away.
        let n = crate::b64_decode(good.jwk.n.as_deref().unwrap()).unwrap();
        let weak_pkcs1 = {
            let mut body = der_tlv(0x02, &[&[0u8][..], &n[128..]].concat());
            body.extend(der_tlv(0x02, &[1, 0, 1]));
            der_tlv(0x30, &body)
        };
        for text in [
            String::new(),
            "not a key".to_string(),
            pem("PUBLIC KEY", b"garbage"),
            pem("PUBLIC KEY", &cut),
            pem("PRIVATE KEY", &pkcs8),
            pem("RSA PUBLIC KEY", &weak_pkcs1),
            "-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----".to_string(),
            format!(
                "{}{}",
                pem("PUBLIC KEY", &good.spki),
                pem("PUBLIC KEY", &good.spki)
            ),
            "A".repeat(MAX_PEM_BYTES + 1),
        ] {
            assert_eq!(
                PublicKey::from_pem(&text).unwrap_err(),
                JoseError::KeyRejected,
                "{text:.60}"
            );
        }
    }

    #[test]
    fn certificate_times_are_read() {
        assert_eq!(time_of(0x17, b"700101000000Z").unwrap(), 0);
        assert_eq!(time_of(0x17, b"491231235959Z").unwrap(), 2_524_607_999);
        assert_eq!(time_of(0x18, b"20300101000000Z").unwrap(), 1_893_456_000);
        assert!(time_of(0x17, b"701301000000Z").is_err());
        assert!(time_of(0x18, b"2030010100000Z").is_err());
    }
}
