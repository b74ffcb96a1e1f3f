//! JSON Web Keys (RFC 7517) and key thumbprints (RFC 7638).

use aws_lc_rs::digest;
use serde::{Deserialize, Serialize};

use crate::b64;

/// A public JWK as published in the JWKS. Only public members exist here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    #[serde(rename = "use", skip_serializing_if = "Option::is_none", default)]
    pub use_: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub alg: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub kid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub n: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub e: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub crv: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub x: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub y: Option<String>,
    /// A certificate chain holding the key (RSA keys: one self-signed certificate).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub x5c: Option<Vec<String>>,
    /// The SHA-1 thumbprint of `x5c`'s first certificate.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub x5t: Option<String>,
}

/// A JWK Set document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// RFC 7638 thumbprint: SHA-256 over the required members in lexicographic order,
/// base64url without padding. Used as the `kid` of every key we create.
pub fn thumbprint(jwk: &Jwk) -> String {
    // serde_json writes these fixed-order maps without whitespace, which is the canonical
    // form RFC 7638 asks for (member values are plain base64url/ASCII strings).
    let canonical = match jwk.kty.as_str() {
        "RSA" => serde_json::json!({"e": jwk.e, "kty": "RSA", "n": jwk.n}),
        "EC" => serde_json::json!({"crv": jwk.crv, "kty": "EC", "x": jwk.x, "y": jwk.y}),
        _ => serde_json::json!({"crv": jwk.crv, "kty": jwk.kty, "x": jwk.x}),
    };
    let bytes = serde_json::to_vec(&canonical).expect("a JSON object always serializes");
    b64(digest::digest(&digest::SHA256, &bytes).as_ref())
}

/// DER of a PKCS#1 `RSAPublicKey { n, e }`, built from a JWK's big-endian integers.
pub fn rsa_public_key_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    let mut body = der_integer(n);
    body.extend(der_integer(e));
    let mut out = vec![0x30];
    out.extend(der_length(body.len()));
    out.extend(body);
    out
}

fn der_integer(bytes: &[u8]) -> Vec<u8> {
    let trimmed: &[u8] = {
        let start = bytes
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(bytes.len().saturating_sub(1));
        &bytes[start.min(bytes.len())..]
    };
    let mut value = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_some_and(|b| b & 0x80 != 0) {
        value.push(0);
    }
    value.extend_from_slice(trimmed);
    if value.is_empty() {
        value.push(0);
    }
    let mut out = vec![0x02];
    out.extend(der_length(value.len()));
    out.extend(value);
    out
}

fn der_length(len: usize) -> Vec<u8> {
    if len < 0x80 {
        return vec![len as u8];
    }
    let bytes: Vec<u8> = len
        .to_be_bytes()
        .into_iter()
        .skip_while(|b| *b == 0)
        .collect();
    let mut out = vec![0x80 | bytes.len() as u8];
    out.extend(bytes);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7638_example_thumbprint() {
        // The example key of RFC 7638 section 3.1 and its published thumbprint.
        let jwk = Jwk {
            kty: "RSA".into(),
            use_: None,
            alg: Some("RS256".into()),
            kid: Some("2011-04-29".into()),
            n: Some("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw".into()),
            e: Some("AQAB".into()),
            crv: None,
            x: None,
            y: None,
            x5c: None,
            x5t: None,
        };
        assert_eq!(
            thumbprint(&jwk),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn der_integer_adds_sign_byte_and_strips_leading_zeros() {
        assert_eq!(der_integer(&[0x80]), vec![0x02, 0x02, 0x00, 0x80]);
        assert_eq!(
            der_integer(&[0x00, 0x01, 0x00, 0x01]),
            vec![0x02, 0x03, 0x01, 0x00, 0x01]
        );
        assert_eq!(der_length(300), vec![0x82, 0x01, 0x2c]);
    }
}
