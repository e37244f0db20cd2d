//! The KV v2 and AppRole JSON shapes, and what an HTTP status from the server means.
//!
//! Owns parsing of the documented answers (`GET <mount>/data/<path>`, `LIST
//! <mount>/metadata/<path>`, `POST auth/<approle>/login`, `{"errors":[...]}`) into typed
//! values and [`VaultError`]s. Pure: no I/O. Secret field values go straight into
//! [`Secret`]s (wiped on drop); parse errors report positions, never content.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::secret::Secret;
use crate::vault::error::VaultError;

/// One version of a secret: its string fields and its version number.
#[derive(Debug, Default)]
pub(crate) struct SecretData {
    /// String fields; other JSON types are left out.
    pub(crate) fields: BTreeMap<String, Secret>,
    /// `metadata.version`, when the server sent it.
    pub(crate) version: Option<u64>,
}

/// A token from a login.
#[derive(Debug)]
pub(crate) struct LoginToken {
    pub(crate) token: Secret,
    /// Zero: the token does not expire.
    pub(crate) lease: Duration,
    /// Whether `auth/token/renew-self` may extend it.
    pub(crate) renewable: bool,
}

/// Parses the answer to `GET /v1/<mount>/data/<path>`. `None` when the latest version is
/// deleted or destroyed (`data.data` is null).
pub(crate) fn parse_read(body: &[u8], path: &str) -> Result<Option<SecretData>, VaultError> {
    #[derive(Deserialize)]
    struct Outer {
        data: Option<Inner>,
    }
    #[derive(Deserialize)]
    struct Inner {
        data: Option<Fields>,
        metadata: Option<Metadata>,
    }
    #[derive(Deserialize)]
    struct Metadata {
        version: Option<u64>,
    }
    let outer: Outer = parse(body, path)?;
    let inner = outer
        .data
        .ok_or_else(|| malformed(path, "no `data` object"))?;
    Ok(inner.data.map(|f| SecretData {
        fields: f.0,
        version: inner.metadata.and_then(|m| m.version),
    }))
}

/// Parses the answer to `LIST /v1/<mount>/metadata/<path>`: the entry names directly in
/// that folder (sub-folders, which end in `/`, are left out), sorted.
pub(crate) fn parse_list(body: &[u8], path: &str) -> Result<Vec<String>, VaultError> {
    #[derive(Deserialize)]
    struct Outer {
        data: Inner,
    }
    #[derive(Deserialize)]
    struct Inner {
        #[serde(default)]
        keys: Vec<String>,
    }
    let outer: Outer = parse(body, path)?;
    let mut keys: Vec<String> = outer
        .data
        .keys
        .into_iter()
        .filter(|k| !k.ends_with('/'))
        .collect();
    keys.sort();
    Ok(keys)
}

/// Parses the answer to a login or a renewal (`auth.client_token`, `auth.lease_duration`,
/// `auth.renewable`).
pub(crate) fn parse_login(body: &[u8], path: &str) -> Result<LoginToken, VaultError> {
    #[derive(Deserialize)]
    struct Outer {
        auth: Option<Auth>,
    }
    #[derive(Deserialize)]
    struct Auth {
        client_token: Secret,
        #[serde(default)]
        lease_duration: u64,
        #[serde(default)]
        renewable: bool,
    }
    let outer: Outer = parse(body, path)?;
    let auth = outer
        .auth
        .ok_or_else(|| malformed(path, "no `auth` object"))?;
    if auth.client_token.is_empty() {
        return Err(malformed(path, "empty `auth.client_token`"));
    }
    Ok(LoginToken {
        token: auth.client_token,
        lease: Duration::from_secs(auth.lease_duration),
        renewable: auth.renewable,
    })
}

/// Parses the answer to `GET auth/token/lookup-self`: the token's remaining `ttl` (zero:
/// no expiry) and whether it is `renewable`.
pub(crate) fn parse_lookup(body: &[u8], path: &str) -> Result<(Duration, bool), VaultError> {
    #[derive(Deserialize)]
    struct Outer {
        data: Data,
    }
    #[derive(Deserialize)]
    struct Data {
        #[serde(default)]
        ttl: u64,
        #[serde(default)]
        renewable: bool,
    }
    let outer: Outer = parse(body, path)?;
    Ok((Duration::from_secs(outer.data.ttl), outer.data.renewable))
}

/// The `errors` list of an error answer, joined with `; ` (empty when absent or not JSON).
pub(crate) fn error_text(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<String>,
    }
    serde_json::from_slice::<Errors>(body)
        .map(|e| e.errors.join("; "))
        .unwrap_or_default()
}

/// The error for a non-success status. 404 is not handled here: its meaning depends on
/// the request (a missing entry, an empty folder).
pub(crate) fn status_error(status: u16, body: &[u8], path: &str, address: &str) -> VaultError {
    let errors = error_text(body);
    match status {
        403 => VaultError::PermissionDenied {
            path: path.to_owned(),
        },
        503 if errors.to_ascii_lowercase().contains("sealed") => VaultError::Sealed {
            address: address.to_owned(),
        },
        _ => VaultError::Server {
            status,
            path: path.to_owned(),
            errors: if errors.is_empty() {
                "no error text".to_owned()
            } else {
                errors
            },
        },
    }
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8], path: &str) -> Result<T, VaultError> {
    serde_json::from_slice(body).map_err(|e| {
        malformed(
            path,
            &format!(
                "{} at line {} column {}",
                category(&e),
                e.line(),
                e.column()
            ),
        )
    })
}

/// A description of a serde_json error that cannot quote the input (its `Display` may
/// quote a string value, which could be a password).
fn category(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Io => "read error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected shape",
        serde_json::error::Category::Eof => "truncated",
    }
}

fn malformed(path: &str, why: &str) -> VaultError {
    VaultError::Malformed {
        path: path.to_owned(),
        why: why.to_owned(),
    }
}

/// The `data.data` object: string values become [`Secret`]s, other values are skipped
/// without being copied anywhere.
struct Fields(BTreeMap<String, Secret>);

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct FieldsVisitor;
        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = Fields;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of secret fields")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
                let mut fields = BTreeMap::new();
                while let Some(key) = map.next_key::<String>()? {
                    if let FieldValue(Some(secret)) = map.next_value::<FieldValue>()? {
                        fields.insert(key, secret);
                    }
                }
                Ok(Fields(fields))
            }
        }
        d.deserialize_map(FieldsVisitor)
    }
}

/// One field value: `Some` for a string, `None` for anything else.
struct FieldValue(Option<Secret>);

impl<'de> Deserialize<'de> for FieldValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ValueVisitor;
        impl<'de> Visitor<'de> for ValueVisitor {
            type Value = FieldValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FieldValue, E> {
                Ok(FieldValue(Some(Secret::new(v.to_owned()))))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<FieldValue, E> {
                Ok(FieldValue(Some(Secret::new(v))))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<FieldValue, E> {
                Ok(FieldValue(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<FieldValue, E> {
                Ok(FieldValue(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<FieldValue, E> {
                Ok(FieldValue(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<FieldValue, E> {
                Ok(FieldValue(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<FieldValue, E> {
                Ok(FieldValue(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FieldValue, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(FieldValue(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FieldValue, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(FieldValue(None))
            }
        }
        d.deserialize_any(ValueVisitor)
    }
}

/// The body of a KV v2 write: `{"data": {...}, "options": {"cas": N}}`. With `cas`, the
/// server refuses the write when the secret changed since it was read (`cas: 0`: it must
/// not exist yet).
pub(crate) fn write_body(
    fields: &BTreeMap<String, Secret>,
    cas: Option<u64>,
) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    encode(capacity(fields), |ser| {
        let mut top = ser.serialize_map(None)?;
        top.serialize_entry("data", &ExposedFields(fields))?;
        if let Some(cas) = cas {
            top.serialize_entry("options", &serde_json::json!({ "cas": cas }))?;
        }
        SerializeMap::end(top)
    })
}

/// A flat JSON object of string fields (the AppRole login body).
pub(crate) fn json_object(
    fields: &BTreeMap<String, Secret>,
) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    encode(capacity(fields), |ser| {
        serde::Serialize::serialize(&ExposedFields(fields), ser)
    })
}

/// Runs `write` against a serializer into a buffer that is wiped on drop.
fn encode(
    capacity: usize,
    write: impl FnOnce(&mut serde_json::Serializer<&mut Vec<u8>>) -> Result<(), serde_json::Error>,
) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    let mut out = Zeroizing::new(Vec::with_capacity(capacity));
    let mut ser = serde_json::Serializer::new(&mut *out);
    write(&mut ser).map_err(|e| VaultError::Settings {
        why: format!("cannot encode a request: {}", category(&e)),
    })?;
    Ok(out)
}

/// Room for the encoded fields (JSON escapes may still grow the buffer once).
fn capacity(fields: &BTreeMap<String, Secret>) -> usize {
    fields
        .iter()
        .map(|(k, v)| k.len() + v.expose().len() + 8)
        .sum::<usize>()
        + 128
}

/// Serializes fields with their secret text, only for a request body.
struct ExposedFields<'a>(&'a BTreeMap<String, Secret>);

impl serde::Serialize for ExposedFields<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v.expose())))
    }
}
