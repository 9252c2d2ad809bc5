//! Reading requests: bodies with their size limit, JSON with unknown keys
//! refused, query strings. Every failure becomes an [`ApiError`] with a
//! stable code instead of the framework's plain-text rejection.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use socred_core::{Day, RecordId, RecordKey, SubjectId};
use socred_store::{FactKey, ItemKey};

use crate::error::ApiError;
use crate::state::AppState;

/// The raw body, refused with `body_too_large` (413) past the route's limit.
#[derive(Debug)]
pub struct RawBody(pub Bytes);

impl FromRequest<AppState> for RawBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<RawBody, ApiError> {
        RawBody::read(request, state, state.limits().body_bytes_max).await
    }
}

impl RawBody {
    /// Reads the body of a route whose limit is `max` (the route's layer
    /// enforces it as the body arrives): a body that declares more is
    /// refused before anything of it is read.
    pub async fn read(request: Request, state: &AppState, max: usize) -> Result<RawBody, ApiError> {
        refuse_declared_over(request.headers(), max)?;
        match Bytes::from_request(request, state).await {
            Ok(bytes) => Ok(RawBody(bytes)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(too_large())
            }
            Err(rejection) if timed_out(&rejection) => Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                "the request body stopped arriving (see docs/api.md for how long the server waits)",
            )),
            Err(rejection) => Err(ApiError::bad_request(
                "invalid_body",
                format!(
                    "the request body could not be read: {}",
                    unread_body(&rejection)
                ),
            )),
        }
    }
}

/// What went wrong reading a body, in the client's terms where the HTTP
/// layer says which: a body cut short, or chunks that do not parse (with
/// the HTTP layer's own words for what is wrong in them).
fn unread_body(rejection: &axum::extract::rejection::BytesRejection) -> String {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(rejection);
    while let Some(error) = cause {
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::UnexpectedEof => {
                    return "it ended before it was whole: the connection closed before the \
                            length its Content-Length declared, or before its last chunk"
                        .to_string()
                }
                std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData => {
                    return format!(
                        "its chunked transfer encoding is malformed: {}",
                        socred_core::printable::printable(&io.to_string())
                    )
                }
                _ => {}
            }
        }
        cause = error.source();
    }
    rejection.body_text()
}

/// Whether reading a body failed because it stalled (`listen.rs`).
fn timed_out(rejection: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(rejection);
    while let Some(error) = cause {
        if error.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cause = error.source();
    }
    false
}

/// The media type of the body, lower case, without parameters. A header
/// that is not text is shown as far as it reads (`\u{fffd}` for the rest),
/// never taken for a missing one.
pub fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = String::from_utf8_lossy(headers.get(CONTENT_TYPE)?.as_bytes()).into_owned();
    let essence = value.split(';').next().unwrap_or_default().trim();
    Some(socred_core::printable::printable(&essence.to_ascii_lowercase()).into_owned())
}

/// Refuses, before reading it, a body whose declared length is over
/// `max`: the client learns at once rather than after sending it all.
fn refuse_declared_over(headers: &HeaderMap, max: usize) -> Result<(), ApiError> {
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    match declared {
        Some(length) if length > max as u64 => Err(too_large()),
        _ => Ok(()),
    }
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        "the request body is larger than this endpoint accepts (see docs/api.md for the limits)",
    )
}

/// Refuses a body that is not declared `application/json`.
pub fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    match media_type(headers).as_deref() {
        Some("application/json") => Ok(()),
        other => Err(unsupported(other, "application/json")),
    }
}

/// `415 unsupported_media_type`: the body's media type (None: the request
/// named none) is not `expected`.
pub fn unsupported(found: Option<&str>, expected: &str) -> ApiError {
    let found = match found {
        Some(found) => format!("the body is `{found}`"),
        None => "the request has no Content-Type".to_string(),
    };
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        format!("{found}; this endpoint takes {expected}"),
    )
}

/// Parses a JSON body into `T` (whose types refuse unknown keys).
pub fn parse_json<T: DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> Result<T, ApiError> {
    require_json(headers)?;
    // Every body is an object; serde would take an array for one, its
    // values in the order of the fields, which no caller means.
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(
            match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
                Ok(_) => {
                    ApiError::bad_request("invalid_body", "the body must be a JSON object ({...})")
                }
                Err(error) => json_error(&error),
            },
        );
    }
    let mut reader = serde_json::Deserializer::from_slice(body);
    let parsed = serde_path_to_error::deserialize(&mut reader).map_err(|error| {
        let mut api = json_error(error.inner());
        // A wrong type or value names the key at fault, not only where it is.
        let path = error.path().to_string();
        if api.code == "invalid_body" && path != "." {
            api.message = format!("`{path}`: {}", api.message);
        }
        api
    })?;
    // Anything after the value (a second object) is malformed too.
    reader.end().map_err(|error| json_error(&error))?;
    Ok(parsed)
}

/// A JSON error as an API error: syntax is `malformed_json`, an unknown key
/// `unknown_field`, anything else (a missing key, a wrong type)
/// `invalid_body`.
pub fn json_error(error: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    let text = error.to_string();
    match error.classify() {
        Category::Syntax | Category::Eof | Category::Io => ApiError::bad_request(
            "malformed_json",
            format!("the body is not valid JSON: {text}"),
        ),
        Category::Data if text.starts_with("unknown field") => {
            ApiError::bad_request("unknown_field", text)
        }
        Category::Data => ApiError::bad_request("invalid_body", without_type_names(&text)),
    }
}

/// serde's message with the program's own type names taken out: "expected
/// struct QueryBody" says "expected an object" to a client, which knows
/// the body's keys from docs/api.md, not the server's types.
fn without_type_names(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("expected ") {
        let after = &rest[at + "expected ".len()..];
        let shape = [
            "struct ",
            "internally tagged enum ",
            "enum ",
            "tuple struct ",
        ]
        .iter()
        .find(|shape| after.starts_with(**shape));
        out.push_str(&rest[..at + "expected ".len()]);
        rest = after;
        if let Some(shape) = shape {
            let name = &after[shape.len()..];
            let end = name
                .find(|c: char| !c.is_alphanumeric() && c != '_')
                .unwrap_or(name.len());
            out.push_str(if *shape == "enum " {
                "one of the values docs/api.md gives"
            } else {
                "an object"
            });
            rest = &name[end..];
        }
    }
    out.push_str(rest);
    out
}

/// The one segment of a route's path that names something (`{id}`,
/// `{uscc}`), percent-decoded. One that does not decode to UTF-8 is
/// refused with `invalid_path` (400) instead of the framework's plain
/// text, and, as with [`Params`], only when the handler asks for it with
/// [`Segment::text`] after checking the caller: an anonymous caller of a
/// guarded route learns first that it needs a token.
#[derive(Debug)]
pub struct Segment(Result<String, String>);

impl Segment {
    /// The segment's text, or `invalid_path`.
    pub fn text(&self) -> Result<&str, ApiError> {
        self.0.as_deref().map_err(|problem| {
            ApiError::bad_request(
                "invalid_path",
                format!("the path is not understood: {problem}"),
            )
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Segment {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Segment, Self::Rejection> {
        Ok(Segment(
            match Path::<String>::from_request_parts(parts, state).await {
                Ok(Path(text)) => Ok(text),
                Err(rejection) => Err(rejection.body_text()),
            },
        ))
    }
}

/// Whether every name and value of a query string is UTF-8 once decoded.
fn decodes_to_text(query: &str) -> bool {
    query
        .split('&')
        .flat_map(|pair| pair.split('='))
        .all(|part| {
            percent_encoding::percent_decode_str(part)
                .decode_utf8()
                .is_ok()
        })
}

/// A query string parsed into `T` (whose types refuse unknown keys). The
/// extraction itself never fails: the handler takes the result with
/// [`Params::get`] after checking the caller, so that an anonymous caller
/// learns that it needs a token before it learns what the query lacks.
#[derive(Debug)]
pub struct Params<T>(Result<T, ApiError>);

impl<T> Params<T> {
    pub fn get(self) -> Result<T, ApiError> {
        self.0
    }
}

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for Params<T> {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &AppState,
    ) -> Result<Params<T>, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let parsed = match Query::<T>::try_from_uri(&parts.uri) {
            // Decoding would put U+FFFD in place of what is not UTF-8 (a
            // purpose shown to the subject, a cursor): refused instead.
            Ok(_) if !decodes_to_text(query) => Err(ApiError::bad_request(
                "invalid_query",
                "the query string is not understood: a value is not UTF-8 once its %XX escapes are decoded",
            )),
            Ok(Query(value)) => Ok(value),
            Err(rejection) => {
                // axum's text begins with a sentence of its own; what
                // follows it names the parameter and what is wrong.
                let text = rejection.body_text();
                let detail = text
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(&text);
                Err(ApiError::bad_request(
                    "invalid_query",
                    format!("the query string is not understood: {detail}"),
                ))
            }
        };
        Ok(Params(parsed))
    }
}

/// A record key in a request body, `{"provider", "id"}`, with no other
/// key: bodies refuse unknown keys, and `RecordKey` itself cannot (it is
/// also read flattened inside larger objects, beside their other keys).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StrictRecordKey {
    provider: Arc<str>,
    id: RecordId,
}

impl From<StrictRecordKey> for RecordKey {
    fn from(key: StrictRecordKey) -> RecordKey {
        RecordKey {
            provider: key.provider,
            id: key.id,
        }
    }
}

/// For `#[serde(deserialize_with)]`: a record key with no other key.
pub fn strict_record_key<'de, D: Deserializer<'de>>(from: D) -> Result<RecordKey, D::Error> {
    StrictRecordKey::deserialize(from).map(RecordKey::from)
}

/// For `#[serde(deserialize_with)]`: an item's key (docs/api.md, review)
/// with no other key, at any depth.
pub fn strict_item_key<'de, D: Deserializer<'de>>(from: D) -> Result<ItemKey, D::Error> {
    #[derive(Deserialize)]
    #[serde(tag = "item", rename_all = "snake_case", deny_unknown_fields)]
    enum Strict {
        Record {
            provider: Arc<str>,
            id: RecordId,
        },
        Fact {
            subject: SubjectId,
            kind: String,
            #[serde(default)]
            record: Option<StrictRecordKey>,
            at: Day,
            by: Arc<str>,
        },
    }
    Ok(match Strict::deserialize(from)? {
        Strict::Record { provider, id } => ItemKey::Record(RecordKey { provider, id }),
        Strict::Fact {
            subject,
            kind,
            record,
            at,
            by,
        } => ItemKey::Fact(FactKey {
            subject,
            kind,
            record: record.map(RecordKey::from),
            at,
            by,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::without_type_names;

    #[test]
    fn type_names_do_not_reach_clients() {
        for (serde, client) in [
            (
                "invalid type: integer `5`, expected struct QueryBody at line 1 column 30",
                "invalid type: integer `5`, expected an object at line 1 column 30",
            ),
            (
                "invalid type: string \"x\", expected internally tagged enum Strict at line 1 column 11",
                "invalid type: string \"x\", expected an object at line 1 column 11",
            ),
            (
                "invalid type: integer `5`, expected a string at line 1 column 53",
                "invalid type: integer `5`, expected a string at line 1 column 53",
            ),
            ("expected struct A, expected struct B", "expected an object, expected an object"),
            ("expected enum Role", "expected one of the values docs/api.md gives"),
        ] {
            assert_eq!(without_type_names(serde), client);
        }
    }
}
