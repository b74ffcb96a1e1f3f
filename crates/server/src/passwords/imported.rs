//! Password hashes made elsewhere and imported with users (Auth0's bulk import:
//! `password_hash`, bcrypt, and `custom_password_hash`). Each is checked once, when it is
//! imported — the shape Auth0 documents, an encoding that decodes to a digest of the
//! right length, a work factor a login can afford — and kept in the `password_hash`
//! column in a form the login verifies without judging it again:
//!
//! - bcrypt and Argon2 as their own strings (`$2b$…`, `$argon2id$…`);
//! - everything else (salted or plain MD4/MD5/SHA-1/SHA-2 digests, HMAC, PBKDF2, LDAP's
//!   RFC 2307 values) as [`LEGACY_PREFIX`] + a JSON [`Legacy`]: the algorithm, the raw
//!   salt, key and digest bytes, and how the password is turned into bytes.
//!
//! After the first successful login the server replaces any of them with its own Argon2id
//! hash (`PasswordHasher::verify` says when).
//!
//! The digests are aws-lc-rs's (the workspace's one crypto backend) except MD4 and MD5,
//! which it lacks (RustCrypto's `md4` / `md-5`), and bcrypt (the `bcrypt` crate): all
//! three only ever verify old hashes.

use argon2::password_hash::PasswordHash;
use aws_lc_rs::{constant_time, digest, hmac, pbkdf2};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What the column holds for a [`Legacy`] hash: this, then its JSON.
pub const LEGACY_PREFIX: &str = "$tessera-legacy$";

/// Above this bcrypt cost a single login would take seconds (each step doubles it):
/// a hostile import file must not make logins that slow. Auth0 recommends 10.
pub const MAX_BCRYPT_COST: u32 = 14;
/// PBKDF2 iterations: OWASP's current advice for PBKDF2-HMAC-SHA1 is 1,300,000.
pub const MAX_PBKDF2_ITERATIONS: u32 = 1_300_000;
/// Argon2: memory in KiB, passes, lanes — above OWASP's highest profile, below what
/// would let a few parallel logins take the machine's memory.
pub const MAX_ARGON2_MEMORY_KIB: u32 = 65_536;
pub const MAX_ARGON2_PASSES: u32 = 10;
pub const MAX_ARGON2_LANES: u32 = 4;
/// Derived key / digest length bound for PHC strings (SHA-512's 64 bytes).
const MAX_OUTPUT_LEN: usize = 64;
/// Salts and HMAC keys: generous, but a stored hash stays small.
const MAX_SALT_LEN: usize = 1024;

/// Why an imported hash is refused, in Auth0's error shape (`code`, `message`, `path`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashRefusal {
    pub code: &'static str,
    pub message: String,
    /// Where in the user object, e.g. `custom_password_hash.hash.encoding`.
    pub path: String,
}

fn refuse(code: &'static str, path: &str, message: impl Into<String>) -> HashRefusal {
    HashRefusal {
        code,
        message: message.into(),
        path: path.to_string(),
    }
}

fn invalid(path: &str, message: impl Into<String>) -> HashRefusal {
    refuse("INVALID_FORMAT", path, message)
}

/// A digest a legacy hash may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Digest {
    Md4,
    Md5,
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl Digest {
    fn parse(name: &str) -> Option<Digest> {
        Some(match name {
            "md4" => Digest::Md4,
            "md5" => Digest::Md5,
            "sha1" => Digest::Sha1,
            "sha224" => Digest::Sha224,
            "sha256" => Digest::Sha256,
            "sha384" => Digest::Sha384,
            "sha512" => Digest::Sha512,
            _ => return None,
        })
    }

    fn output_len(self) -> usize {
        match self {
            Digest::Md4 | Digest::Md5 => 16,
            Digest::Sha1 => 20,
            Digest::Sha224 => 28,
            Digest::Sha256 => 32,
            Digest::Sha384 => 48,
            Digest::Sha512 => 64,
        }
    }

    fn aws(self) -> Option<&'static digest::Algorithm> {
        Some(match self {
            Digest::Md4 | Digest::Md5 => return None,
            Digest::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            Digest::Sha224 => &digest::SHA224,
            Digest::Sha256 => &digest::SHA256,
            Digest::Sha384 => &digest::SHA384,
            Digest::Sha512 => &digest::SHA512,
        })
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        use md5::Digest as _;
        match self {
            Digest::Md4 => md4::Md4::digest(data).to_vec(),
            Digest::Md5 => md5::Md5::digest(data).to_vec(),
            other => digest::digest(other.aws().expect("a SHA digest"), data)
                .as_ref()
                .to_vec(),
        }
    }

    fn hmac(self) -> Option<hmac::Algorithm> {
        Some(match self {
            Digest::Md4 | Digest::Md5 => return None,
            Digest::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            Digest::Sha224 => hmac::HMAC_SHA224,
            Digest::Sha256 => hmac::HMAC_SHA256,
            Digest::Sha384 => hmac::HMAC_SHA384,
            Digest::Sha512 => hmac::HMAC_SHA512,
        })
    }

    fn pbkdf2(self) -> Option<pbkdf2::Algorithm> {
        Some(match self {
            Digest::Sha1 => pbkdf2::PBKDF2_HMAC_SHA1,
            Digest::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            Digest::Sha384 => pbkdf2::PBKDF2_HMAC_SHA384,
            Digest::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
            _ => return None,
        })
    }
}

/// How the password's characters become the bytes that were hashed (Node's buffer
/// encodings, which Auth0 names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PasswordEncoding {
    Utf8,
    /// `ascii`, `latin1`, `binary`: the low byte of each UTF-16 unit, as Node does.
    Latin1,
    /// `utf16le`, `ucs2`.
    Utf16le,
}

impl PasswordEncoding {
    fn encode(self, password: &str) -> Vec<u8> {
        match self {
            PasswordEncoding::Utf8 => password.as_bytes().to_vec(),
            PasswordEncoding::Latin1 => password.encode_utf16().map(|unit| unit as u8).collect(),
            PasswordEncoding::Utf16le => password
                .encode_utf16()
                .flat_map(|unit| unit.to_le_bytes())
                .collect(),
        }
    }
}

/// A hash the login verifies by recomputing it: the stored form of every imported
/// algorithm but bcrypt and Argon2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scheme", rename_all = "lowercase")]
pub enum Legacy {
    /// `digest(salt ‖ password)` or `digest(password ‖ salt)`.
    Digest {
        digest: Digest,
        password: PasswordEncoding,
        salt: Vec<u8>,
        salt_prefix: bool,
        hash: Vec<u8>,
    },
    /// `HMAC(key, salt ‖ password)` or `HMAC(key, password ‖ salt)`.
    Hmac {
        digest: Digest,
        password: PasswordEncoding,
        key: Vec<u8>,
        salt: Vec<u8>,
        salt_prefix: bool,
        hash: Vec<u8>,
    },
    Pbkdf2 {
        digest: Digest,
        iterations: u32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
}

fn salted(salt: &[u8], password: &[u8], prefix: bool) -> Vec<u8> {
    let mut input = Vec::with_capacity(salt.len() + password.len());
    if prefix {
        input.extend_from_slice(salt);
        input.extend_from_slice(password);
    } else {
        input.extend_from_slice(password);
        input.extend_from_slice(salt);
    }
    input
}

impl Legacy {
    fn verify(&self, password: &str) -> bool {
        match self {
            Legacy::Digest {
                digest,
                password: encoding,
                salt,
                salt_prefix,
                hash,
            } => {
                let input = salted(salt, &encoding.encode(password), *salt_prefix);
                constant_time::verify_slices_are_equal(&digest.hash(&input), hash).is_ok()
            }
            Legacy::Hmac {
                digest,
                password: encoding,
                key,
                salt,
                salt_prefix,
                hash,
            } => {
                let Some(algorithm) = digest.hmac() else {
                    return false;
                };
                let input = salted(salt, &encoding.encode(password), *salt_prefix);
                hmac::verify(&hmac::Key::new(algorithm, key), &input, hash).is_ok()
            }
            Legacy::Pbkdf2 {
                digest,
                iterations,
                salt,
                hash,
            } => {
                let (Some(algorithm), Some(iterations)) =
                    (digest.pbkdf2(), std::num::NonZeroU32::new(*iterations))
                else {
                    return false;
                };
                pbkdf2::verify(algorithm, iterations, salt, password.as_bytes(), hash).is_ok()
            }
        }
    }

    fn stored(&self) -> String {
        format!(
            "{LEGACY_PREFIX}{}",
            serde_json::to_string(self).expect("plain data serializes")
        )
    }
}

/// Verifies a password against an imported hash as stored (not Tessera's own Argon2id,
/// which `super` verifies). Blocking: bcrypt, Argon2 and PBKDF2 take milliseconds.
/// Anything unreadable never verifies.
pub(super) fn verify_imported(password: &str, stored: &str) -> bool {
    if let Some(json) = stored.strip_prefix(LEGACY_PREFIX) {
        return serde_json::from_str::<Legacy>(json).is_ok_and(|legacy| legacy.verify(password));
    }
    if is_bcrypt(stored) {
        return bcrypt::verify(password, stored).unwrap_or(false);
    }
    false
}

fn is_bcrypt(value: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"]
        .iter()
        .any(|prefix| value.starts_with(prefix))
}

/// Auth0's `password_hash`: bcrypt `$2a$` / `$2b$` (and PHP's `$2y$`), a cost from 4 to
/// [`MAX_BCRYPT_COST`]. Returns what the column keeps.
pub fn from_bcrypt(value: &str, path: &str) -> Result<String, HashRefusal> {
    const ALPHABET: &str = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    if !is_bcrypt(value) {
        return Err(invalid(
            path,
            "must be a bcrypt hash starting with $2a$ or $2b$",
        ));
    }
    let rest = &value[4..];
    let (cost, encoded) = rest
        .split_once('$')
        .ok_or_else(|| invalid(path, "is not a bcrypt hash: no cost"))?;
    let cost: u32 = match cost.as_bytes() {
        [a, b] if a.is_ascii_digit() && b.is_ascii_digit() => cost.parse().unwrap_or(0),
        _ => {
            return Err(invalid(
                path,
                "is not a bcrypt hash: the cost is two digits",
            ));
        }
    };
    if !(4..=MAX_BCRYPT_COST).contains(&cost) {
        return Err(invalid(
            path,
            format!("bcrypt cost {cost} is outside 4..={MAX_BCRYPT_COST}"),
        ));
    }
    if encoded.len() != 53 || !encoded.chars().all(|c| ALPHABET.contains(c)) {
        return Err(invalid(
            path,
            "is not a bcrypt hash: 53 characters of salt and hash expected after the cost",
        ));
    }
    Ok(value.to_string())
}

/// Reads a strict object: every member must be in `allowed`.
fn object<'a>(
    value: &'a Value,
    path: &str,
    allowed: &[&str],
) -> Result<&'a Map<String, Value>, HashRefusal> {
    let map = value
        .as_object()
        .ok_or_else(|| refuse("INVALID_TYPE", path, "Expected type object"))?;
    if let Some(unknown) = map.keys().find(|key| !allowed.contains(&key.as_str())) {
        return Err(refuse(
            "OBJECT_ADDITIONAL_PROPERTIES",
            path,
            format!("Additional properties not allowed: {unknown}"),
        ));
    }
    Ok(map)
}

fn child(path: &str, key: &str) -> String {
    format!("{path}.{key}")
}

fn string<'a>(
    map: &'a Map<String, Value>,
    path: &str,
    key: &str,
) -> Result<Option<&'a str>, HashRefusal> {
    match map.get(key) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(refuse(
            "INVALID_TYPE",
            &child(path, key),
            "Expected type string",
        )),
    }
}

fn one_of<'a>(
    map: &'a Map<String, Value>,
    path: &str,
    key: &str,
    allowed: &[&str],
) -> Result<Option<&'a str>, HashRefusal> {
    let value = string(map, path, key)?;
    match value {
        Some(text) if !allowed.contains(&text) => Err(refuse(
            "ENUM_MISMATCH",
            &child(path, key),
            format!(
                "No enum match for: \"{text}\" (one of {})",
                allowed.join(", ")
            ),
        )),
        other => Ok(other),
    }
}

/// A value with its encoding (`hash`, `salt`, `key`), decoded to bytes.
fn decode(text: &str, encoding: &str, path: &str) -> Result<Vec<u8>, HashRefusal> {
    let bytes = match encoding {
        "utf8" => Some(text.as_bytes().to_vec()),
        "hex" if text.len().is_multiple_of(2) => (0..text.len())
            .step_by(2)
            .map(|i| {
                text.get(i..i + 2)
                    .and_then(|pair| u8::from_str_radix(pair, 16).ok())
            })
            .collect(),
        "hex" => None,
        "base64" => STANDARD
            .decode(text)
            .or_else(|_| STANDARD_NO_PAD.decode(text))
            .ok(),
        _ => None,
    };
    bytes.ok_or_else(|| invalid(path, format!("is not valid {encoding}")))
}

const ALGORITHMS: &[&str] = &[
    "argon2", "bcrypt", "hmac", "ldap", "md4", "md5", "sha1", "sha256", "sha512", "pbkdf2",
    "scrypt",
];
const VALUE_ENCODINGS: &[&str] = &["base64", "hex", "utf8"];
const DIGESTS: &[&str] = &[
    "md4",
    "md5",
    "ripemd160",
    "sha1",
    "sha224",
    "sha256",
    "sha384",
    "sha512",
    "whirlpool",
];
const PASSWORD_ENCODINGS: &[&str] = &["ascii", "utf8", "utf16le", "ucs2", "latin1", "binary"];

/// Auth0's `custom_password_hash` object, checked against its schema and the rules of its
/// algorithm. Returns what the column keeps. `path` names the member in errors.
pub fn from_custom(value: &Value, path: &str) -> Result<String, HashRefusal> {
    let custom = object(value, path, &["algorithm", "hash", "salt", "password"])?;
    let Some(algorithm) = one_of(custom, path, "algorithm", ALGORITHMS)? else {
        return Err(refuse(
            "OBJECT_MISSING_REQUIRED_PROPERTY",
            path,
            "Missing required property: algorithm",
        ));
    };
    let hash_path = child(path, "hash");
    let Some(hash) = custom.get("hash") else {
        return Err(refuse(
            "OBJECT_MISSING_REQUIRED_PROPERTY",
            path,
            "Missing required property: hash",
        ));
    };
    let hash = object(hash, &hash_path, &["value", "encoding", "digest", "key"])?;
    let Some(hash_value) = string(hash, &hash_path, "value")? else {
        return Err(refuse(
            "OBJECT_MISSING_REQUIRED_PROPERTY",
            &hash_path,
            "Missing required property: value",
        ));
    };
    let value_path = child(&hash_path, "value");
    let encoding = one_of(hash, &hash_path, "encoding", VALUE_ENCODINGS)?;
    let digest = one_of(hash, &hash_path, "digest", DIGESTS)?;
    let key = hash
        .get("key")
        .map(|key| {
            let key_path = child(&hash_path, "key");
            let key = object(key, &key_path, &["value", "encoding"])?;
            let value = string(key, &key_path, "value")?.ok_or_else(|| {
                refuse(
                    "OBJECT_MISSING_REQUIRED_PROPERTY",
                    &key_path,
                    "Missing required property: value",
                )
            })?;
            let encoding = one_of(key, &key_path, "encoding", VALUE_ENCODINGS)?.unwrap_or("utf8");
            let bytes = decode(value, encoding, &child(&key_path, "value"))?;
            if bytes.is_empty() || bytes.len() > MAX_SALT_LEN {
                return Err(invalid(
                    &key_path,
                    format!("must be 1 to {MAX_SALT_LEN} bytes"),
                ));
            }
            Ok(bytes)
        })
        .transpose()?;
    let salt_path = child(path, "salt");
    let salt = custom
        .get("salt")
        .map(|salt| {
            let salt = object(salt, &salt_path, &["value", "encoding", "position"])?;
            let value = string(salt, &salt_path, "value")?.ok_or_else(|| {
                refuse(
                    "OBJECT_MISSING_REQUIRED_PROPERTY",
                    &salt_path,
                    "Missing required property: value",
                )
            })?;
            let encoding = one_of(salt, &salt_path, "encoding", VALUE_ENCODINGS)?.unwrap_or("utf8");
            let position = one_of(salt, &salt_path, "position", &["prefix", "suffix"])?;
            let bytes = decode(value, encoding, &child(&salt_path, "value"))?;
            if bytes.len() > MAX_SALT_LEN {
                return Err(invalid(
                    &salt_path,
                    format!("must be at most {MAX_SALT_LEN} bytes"),
                ));
            }
            Ok((bytes, position != Some("suffix")))
        })
        .transpose()?;
    let password_path = child(path, "password");
    let password = match custom.get("password") {
        None => PasswordEncoding::Utf8,
        Some(password) => {
            let password = object(password, &password_path, &["encoding"])?;
            match one_of(password, &password_path, "encoding", PASSWORD_ENCODINGS)? {
                None | Some("utf8") => PasswordEncoding::Utf8,
                Some("utf16le" | "ucs2") => PasswordEncoding::Utf16le,
                Some(_) => PasswordEncoding::Latin1,
            }
        }
    };

    // What each algorithm takes beside `hash.value`.
    let embedded = matches!(
        algorithm,
        "argon2" | "bcrypt" | "ldap" | "pbkdf2" | "scrypt"
    );
    let not_used = |member: &str, where_: &str| {
        invalid(
            where_,
            format!("{member} is not used with the {algorithm} algorithm"),
        )
    };
    if embedded {
        if encoding.is_some_and(|e| e != "utf8") {
            return Err(invalid(
                &child(&hash_path, "encoding"),
                format!("must be utf8 for {algorithm}"),
            ));
        }
        if salt.is_some() {
            return Err(not_used("a salt (it is part of the hash)", &salt_path));
        }
        if password != PasswordEncoding::Utf8 {
            return Err(not_used("password.encoding", &password_path));
        }
    } else if encoding == Some("utf8") {
        return Err(invalid(
            &child(&hash_path, "encoding"),
            format!("must be hex or base64 for {algorithm}"),
        ));
    }
    if algorithm != "hmac" {
        if key.is_some() {
            return Err(not_used("hash.key", &hash_path));
        }
        if digest.is_some() {
            return Err(not_used("hash.digest", &hash_path));
        }
    }
    let (salt, salt_prefix) = salt.unwrap_or_default();

    match algorithm {
        "bcrypt" => from_bcrypt(hash_value, &value_path),
        "argon2" => from_argon2(hash_value, &value_path),
        "pbkdf2" => from_pbkdf2(hash_value, &value_path),
        "ldap" => from_ldap(hash_value, &value_path),
        "scrypt" => Err(invalid(
            &child(path, "algorithm"),
            "scrypt hashes are not supported by Tessera yet",
        )),
        "hmac" => {
            let digest_name = digest.ok_or_else(|| {
                refuse(
                    "OBJECT_MISSING_REQUIRED_PROPERTY",
                    &hash_path,
                    "Missing required property: digest (hmac)",
                )
            })?;
            let digest = Digest::parse(digest_name)
                .filter(|d| d.hmac().is_some())
                .ok_or_else(|| {
                    invalid(&child(&hash_path, "digest"), format!("hmac with {digest_name} is not supported by Tessera (sha1 and sha2 are)"))
                })?;
            let key = key.ok_or_else(|| {
                refuse(
                    "OBJECT_MISSING_REQUIRED_PROPERTY",
                    &hash_path,
                    "Missing required property: key (hmac)",
                )
            })?;
            let hash = digest_value(hash_value, encoding, digest, &value_path)?;
            Ok(Legacy::Hmac {
                digest,
                password,
                key,
                salt,
                salt_prefix,
                hash,
            }
            .stored())
        }
        plain => {
            let digest = Digest::parse(plain).expect("the plain digests are in the enum");
            let hash = digest_value(hash_value, encoding, digest, &value_path)?;
            Ok(Legacy::Digest {
                digest,
                password,
                salt,
                salt_prefix,
                hash,
            }
            .stored())
        }
    }
}

/// A digest given as hex (the default) or base64: it must decode to the digest's length,
/// which catches a value given in the other encoding.
fn digest_value(
    value: &str,
    encoding: Option<&str>,
    digest: Digest,
    path: &str,
) -> Result<Vec<u8>, HashRefusal> {
    let encoding = encoding.unwrap_or("hex");
    let bytes = decode(value, encoding, path)?;
    if bytes.len() != digest.output_len() {
        return Err(invalid(
            path,
            format!(
                "decodes ({encoding}) to {} bytes; a {digest:?} digest has {}",
                bytes.len(),
                digest.output_len()
            ),
        ));
    }
    Ok(bytes)
}

/// An Argon2 PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`, or argon2i / argon2d)
/// with costs within the bounds above.
fn from_argon2(value: &str, path: &str) -> Result<String, HashRefusal> {
    let parsed =
        PasswordHash::new(value).map_err(|_| invalid(path, "is not an Argon2 PHC string"))?;
    if !["argon2id", "argon2i", "argon2d"].contains(&parsed.algorithm.as_str()) {
        return Err(invalid(path, "is not an Argon2 PHC string"));
    }
    let params = argon2::Params::try_from(&parsed)
        .map_err(|_| invalid(path, "has invalid Argon2 parameters"))?;
    if params.m_cost() > MAX_ARGON2_MEMORY_KIB
        || params.t_cost() > MAX_ARGON2_PASSES
        || params.p_cost() > MAX_ARGON2_LANES
    {
        return Err(invalid(
            path,
            format!(
                "Argon2 costs above m={MAX_ARGON2_MEMORY_KIB},t={MAX_ARGON2_PASSES},p={MAX_ARGON2_LANES} are refused"
            ),
        ));
    }
    match &parsed.hash {
        Some(hash) if (16..=MAX_OUTPUT_LEN).contains(&hash.len()) => {}
        _ => return Err(invalid(path, "has no Argon2 hash of 16 to 64 bytes")),
    }
    if parsed.salt.is_none() {
        return Err(invalid(path, "has no salt"));
    }
    Ok(value.to_string())
}

/// A PBKDF2 PHC string as Auth0 takes it: `$pbkdf2-<digest>$i=<iterations>,l=<length>$
/// <salt>$<hash>`, salt and hash in unpadded standard base64.
fn from_pbkdf2(value: &str, path: &str) -> Result<String, HashRefusal> {
    let parsed =
        PasswordHash::new(value).map_err(|_| invalid(path, "is not a PBKDF2 PHC string"))?;
    let digest = parsed
        .algorithm
        .as_str()
        .strip_prefix("pbkdf2-")
        .and_then(Digest::parse)
        .filter(|digest| digest.pbkdf2().is_some())
        .ok_or_else(|| {
            invalid(path, "must be $pbkdf2-sha1$, -sha256$, -sha384$ or -sha512$ (other digests are not supported by Tessera)")
        })?;
    let mut iterations = None;
    let mut length = None;
    for (name, value) in parsed.params.iter() {
        let number = value
            .decimal()
            .map_err(|_| invalid(path, "has a non-numeric PBKDF2 parameter"))?;
        match name.as_str() {
            "i" => iterations = Some(number),
            "l" => length = Some(number as usize),
            other => {
                return Err(invalid(
                    path,
                    format!("has an unknown PBKDF2 parameter {other}"),
                ));
            }
        }
    }
    let iterations = iterations.ok_or_else(|| invalid(path, "has no iteration count (i=)"))?;
    if !(1..=MAX_PBKDF2_ITERATIONS).contains(&iterations) {
        return Err(invalid(
            path,
            format!("PBKDF2 iterations must be 1 to {MAX_PBKDF2_ITERATIONS}"),
        ));
    }
    let salt = parsed.salt.ok_or_else(|| invalid(path, "has no salt"))?;
    let mut salt_bytes = [0u8; 64];
    let salt = salt
        .decode_b64(&mut salt_bytes)
        .map_err(|_| {
            invalid(
                path,
                "has a salt that is not unpadded base64 of at most 64 bytes",
            )
        })?
        .to_vec();
    let hash = parsed.hash.ok_or_else(|| invalid(path, "has no hash"))?;
    let hash = hash.as_bytes().to_vec();
    if hash.len() > MAX_OUTPUT_LEN || length.is_some_and(|l| l != hash.len()) {
        return Err(invalid(
            path,
            "has a hash whose length is not l (at most 64 bytes)",
        ));
    }
    Ok(Legacy::Pbkdf2 {
        digest,
        iterations,
        salt,
        hash,
    }
    .stored())
}

/// An RFC 2307 value, `{SCHEME}base64`: `{MD5}`, `{SHA}`, `{SHA256}`, `{SHA384}`,
/// `{SHA512}` and their salted forms `{SMD5}`, `{SSHA}`, … whose salt follows the
/// digest (hashed after the password).
fn from_ldap(value: &str, path: &str) -> Result<String, HashRefusal> {
    let (scheme, encoded) = value
        .strip_prefix('{')
        .and_then(|rest| rest.split_once('}'))
        .ok_or_else(|| invalid(path, "is not an RFC 2307 value ({SCHEME}base64)"))?;
    let scheme = scheme.to_ascii_uppercase();
    let (digest, is_salted) = match scheme.as_str() {
        "MD5" => (Digest::Md5, false),
        "SMD5" => (Digest::Md5, true),
        "SHA" | "SHA1" => (Digest::Sha1, false),
        "SSHA" | "SSHA1" => (Digest::Sha1, true),
        "SHA256" => (Digest::Sha256, false),
        "SSHA256" => (Digest::Sha256, true),
        "SHA384" => (Digest::Sha384, false),
        "SSHA384" => (Digest::Sha384, true),
        "SHA512" => (Digest::Sha512, false),
        "SSHA512" => (Digest::Sha512, true),
        _ => {
            return Err(invalid(
                path,
                format!(
                    "the LDAP scheme {{{scheme}}} is not supported (MD5, SMD5, SHA, SSHA, SHA256/384/512 and their salted forms are)"
                ),
            ));
        }
    };
    let bytes = decode(encoded, "base64", path)?;
    let length = digest.output_len();
    let fits = if is_salted {
        bytes.len() > length && bytes.len() - length <= MAX_SALT_LEN
    } else {
        bytes.len() == length
    };
    if !fits {
        return Err(invalid(
            path,
            format!("does not hold a {scheme} digest of {length} bytes"),
        ));
    }
    let (hash, salt) = bytes.split_at(length);
    Ok(Legacy::Digest {
        digest,
        password: PasswordEncoding::Utf8,
        salt: salt.to_vec(),
        salt_prefix: false,
        hash: hash.to_vec(),
    }
    .stored())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn stored(custom: Value) -> String {
        from_custom(&custom, "custom_password_hash").unwrap()
    }

    fn refusal(custom: Value) -> HashRefusal {
        from_custom(&custom, "custom_password_hash").unwrap_err()
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn salted_digests_verify_in_either_position_and_encoding() {
        let sha256 = Digest::Sha256.hash(b"saltpassword");
        let s = stored(
            json!({"algorithm": "sha256", "hash": {"value": hex(&sha256), "encoding": "hex"}, "salt": {"value": "salt", "position": "prefix"}}),
        );
        assert!(verify_imported("password", &s));
        assert!(!verify_imported("passwore", &s));
        let sha512 = Digest::Sha512.hash(b"password\x01\x02");
        let s = stored(
            json!({"algorithm": "sha512", "hash": {"value": STANDARD.encode(sha512), "encoding": "base64"}, "salt": {"value": "0102", "encoding": "hex", "position": "suffix"}}),
        );
        assert!(verify_imported("password", &s));
        let md5 = Digest::Md5.hash(b"password");
        assert!(verify_imported(
            "password",
            &stored(json!({"algorithm": "md5", "hash": {"value": hex(&md5)}}))
        ));
        let md4 = Digest::Md4.hash(b"password");
        assert!(verify_imported(
            "password",
            &stored(json!({"algorithm": "md4", "hash": {"value": hex(&md4)}}))
        ));
        // The password as UTF-16LE bytes, as .NET hashes strings.
        let sha1 = Digest::Sha1.hash(&PasswordEncoding::Utf16le.encode("pässword"));
        let s = stored(
            json!({"algorithm": "sha1", "hash": {"value": hex(&sha1)}, "password": {"encoding": "utf16le"}}),
        );
        assert!(verify_imported("pässword", &s));
        assert!(!verify_imported("password", &s));
    }

    #[test]
    fn hmac_pbkdf2_and_ldap_verify() {
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"secret");
        let tag = hmac::sign(&key, b"password");
        let s = stored(
            json!({"algorithm": "hmac", "hash": {"value": STANDARD.encode(tag.as_ref()), "encoding": "base64", "digest": "sha256", "key": {"value": "secret"}}}),
        );
        assert!(verify_imported("password", &s));
        assert!(!verify_imported("Password", &s));

        let mut derived = [0u8; 32];
        let salt = b"0123456789abcdef";
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            std::num::NonZeroU32::new(1000).unwrap(),
            salt,
            b"password",
            &mut derived,
        );
        let phc = format!(
            "$pbkdf2-sha256$i=1000,l=32${}${}",
            STANDARD_NO_PAD.encode(salt),
            STANDARD_NO_PAD.encode(derived)
        );
        let s = stored(json!({"algorithm": "pbkdf2", "hash": {"value": phc, "encoding": "utf8"}}));
        assert!(verify_imported("password", &s));
        assert!(!verify_imported("passw0rd", &s));

        let mut ssha = Digest::Sha1.hash(b"passwordNaCl");
        ssha.extend_from_slice(b"NaCl");
        let s = stored(
            json!({"algorithm": "ldap", "hash": {"value": format!("{{SSHA}}{}", STANDARD.encode(&ssha))}}),
        );
        assert!(verify_imported("password", &s));
        let md5 = Digest::Md5.hash(b"password");
        let s = stored(
            json!({"algorithm": "ldap", "hash": {"value": format!("{{MD5}}{}", STANDARD.encode(md5))}}),
        );
        assert!(verify_imported("password", &s));
    }

    #[test]
    fn bcrypt_and_argon2_are_kept_as_they_are() {
        let hash = bcrypt::hash("password", 4).unwrap();
        assert_eq!(from_bcrypt(&hash, "password_hash").unwrap(), hash);
        assert!(verify_imported("password", &hash));
        assert!(!verify_imported("wrong", &hash));
        let s = stored(json!({"algorithm": "bcrypt", "hash": {"value": hash}}));
        assert!(verify_imported("password", &s));
        let argon = crate::passwords::hash_password_blocking("password");
        assert_eq!(
            stored(json!({"algorithm": "argon2", "hash": {"value": argon}})),
            argon
        );
    }

    #[test]
    fn hostile_or_malformed_hashes_are_refused() {
        let slow = "$2b$31$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234";
        assert!(
            from_bcrypt(slow, "password_hash")
                .unwrap_err()
                .message
                .contains("cost 31")
        );
        assert!(
            from_bcrypt(
                "$2b$15$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234",
                "p"
            )
            .is_err()
        );
        assert!(from_bcrypt("$argon2id$v=19$m=1,t=1,p=1$c2FsdA$aGFzaA", "p").is_err());
        assert!(from_bcrypt("$2b$10$short", "p").is_err());
        assert!(
            from_bcrypt(
                "$2b$1x$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234",
                "p"
            )
            .is_err()
        );
        let md5 = hex(&Digest::Md5.hash(b"password"));
        let cases = [
            (json!("md5"), "INVALID_TYPE"),
            (
                json!({"algorithm": "md5"}),
                "OBJECT_MISSING_REQUIRED_PROPERTY",
            ),
            (
                json!({"hash": {"value": md5}}),
                "OBJECT_MISSING_REQUIRED_PROPERTY",
            ),
            (
                json!({"algorithm": "rot13", "hash": {"value": md5}}),
                "ENUM_MISMATCH",
            ),
            (
                json!({"algorithm": "md5", "hash": {"value": md5}, "extra": 1}),
                "OBJECT_ADDITIONAL_PROPERTIES",
            ),
            (
                json!({"algorithm": "md5", "hash": {"value": 5}}),
                "INVALID_TYPE",
            ),
            // Base64 declared as hex, hex declared as base64, a digest of the wrong length.
            (
                json!({"algorithm": "md5", "hash": {"value": STANDARD.encode([0u8; 16]), "encoding": "hex"}}),
                "INVALID_FORMAT",
            ),
            (
                json!({"algorithm": "md5", "hash": {"value": md5, "encoding": "base64"}}),
                "INVALID_FORMAT",
            ),
            (
                json!({"algorithm": "sha256", "hash": {"value": md5}}),
                "INVALID_FORMAT",
            ),
            (
                json!({"algorithm": "md5", "hash": {"value": md5, "encoding": "utf8"}}),
                "INVALID_FORMAT",
            ),
            (
                json!({"algorithm": "md5", "hash": {"value": md5, "encoding": "rot13"}}),
                "ENUM_MISMATCH",
            ),
            (
                json!({"algorithm": "md5", "hash": {"value": md5, "key": {"value": "k"}}}),
                "INVALID_FORMAT",
            ),
            (
                json!({"algorithm": "md5", "hash": {"value": md5}, "salt": {"value": "zz", "encoding": "hex"}}),
                "INVALID_FORMAT",
            ),
            (
                json!({"algorithm": "md5", "hash": {"value": md5}, "salt": {"value": "s", "position": "middle"}}),
                "ENUM_MISMATCH",
            ),
            (
                json!({"algorithm": "hmac", "hash": {"value": md5}}),
                "OBJECT_MISSING_REQUIRED_PROPERTY",
            ),
            (
                json!({"algorithm": "hmac", "hash": {"value": md5, "digest": "md5", "key": {"value": "k"}}}),
                "INVALID_FORMAT",
            ),
            (
                json!({"algorithm": "bcrypt", "hash": {"value": md5}}),
                "INVALID_FORMAT",
            ),
            (
                json!({"algorithm": "bcrypt", "hash": {"value": bcrypt::hash("x", 4).unwrap()}, "salt": {"value": "s"}}),
                "INVALID_FORMAT",
            ),
            (
                json!({"algorithm": "argon2", "hash": {"value": "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"}}),
                "INVALID_FORMAT",
            ),
            (
                json!({"algorithm": "argon2", "hash": {"value": "not phc"}}),
                "INVALID_FORMAT",
            ),
            (
                json!({"algorithm": "pbkdf2", "hash": {"value": "$pbkdf2-sha256$i=100000000,l=32$c2FsdA$aGFzaA"}}),
                "INVALID_FORMAT",
            ),
            (
                json!({"algorithm": "pbkdf2", "hash": {"value": "$pbkdf2-md5$i=1000,l=16$c2FsdA$aGFzaGhhc2hoYXNoaGFzaA"}}),
                "INVALID_FORMAT",
            ),
            (
                json!({"algorithm": "pbkdf2", "hash": {"value": "$pbkdf2-sha256$l=32$c2FsdA$aGFzaA"}}),
                "INVALID_FORMAT",
            ),
            (
                json!({"algorithm": "ldap", "hash": {"value": "{CRYPT}abc"}}),
                "INVALID_FORMAT",
            ),
            (
                json!({"algorithm": "ldap", "hash": {"value": "{SHA}c2hvcnQ="}}),
                "INVALID_FORMAT",
            ),
            (
                json!({"algorithm": "ldap", "hash": {"value": "SHA}c2hvcnQ="}}),
                "INVALID_FORMAT",
            ),
            (
                json!({"algorithm": "scrypt", "hash": {"value": "$scrypt$ln=16,r=8,p=1$c2FsdA$aGFzaA"}}),
                "INVALID_FORMAT",
            ),
        ];
        for (custom, code) in cases {
            let refused = refusal(custom.clone());
            assert_eq!(refused.code, code, "{custom}: {refused:?}");
            assert!(
                refused.path.starts_with("custom_password_hash"),
                "{refused:?}"
            );
        }
    }

    #[test]
    fn a_stored_form_that_does_not_parse_never_verifies() {
        assert!(!verify_imported("x", "$tessera-legacy${not json"));
        assert!(!verify_imported("x", "$2b$10$broken"));
        assert!(!verify_imported("x", ""));
    }
}
