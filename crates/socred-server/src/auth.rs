//! Who is calling: `Authorization: Bearer <token>`, looked up by the
//! token's SHA-256 (the store keeps nothing else), and what the caller's
//! role lets it do.
//!
//! Lookups are cached by token hash for [`PRINCIPAL_CACHE_TTL`], so that
//! the decision path does not read the store for every request. Revoking or
//! replacing a principal clears this process's cache at once; another
//! process serving the same store notices within the TTL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::StatusCode;
use socred_store::{hash_token, Principal, Role};

use crate::error::ApiError;
use crate::state::AppState;
use crate::token::plausible_token;

/// How long a token lookup (found or not) is trusted before the store is
/// asked again.
pub const PRINCIPAL_CACHE_TTL: Duration = Duration::from_secs(5);

/// Entries kept at most; beyond, the cache starts over (a flood of random
/// tokens must not grow memory).
const CACHE_ENTRIES_MAX: usize = 100_000;

type Entry = (Option<Arc<Principal>>, Instant);

#[derive(Default)]
pub(crate) struct PrincipalCache {
    entries: Mutex<HashMap<String, Entry>>,
}

impl PrincipalCache {
    fn get(&self, hash: &str) -> Option<Option<Arc<Principal>>> {
        let entries = self.entries.lock().ok()?;
        let (principal, at) = entries.get(hash)?;
        (at.elapsed() < PRINCIPAL_CACHE_TTL).then(|| principal.clone())
    }

    fn put(&self, hash: String, principal: Option<Arc<Principal>>) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= CACHE_ENTRIES_MAX {
            entries.clear();
        }
        entries.insert(hash, (principal, Instant::now()));
    }

    /// Forgets every lookup: after a principal changed or was revoked.
    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }
}

/// The caller of a request: a principal, or nobody.
#[derive(Clone, Debug)]
pub struct Caller(pub Option<Arc<Principal>>);

impl Caller {
    /// The principal, when its role is one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<&Principal, ApiError> {
        let Some(principal) = &self.0 else {
            return Err(unauthenticated());
        };
        if roles.contains(&principal.role) {
            return Ok(principal);
        }
        let allowed: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        Err(ApiError::forbidden(
            "forbidden",
            format!(
                "principal `{}` has role {}; this endpoint is for the role {}",
                principal.id,
                principal.role,
                allowed.join(" or ")
            ),
        ))
    }

    /// The principal's scope (provider id, agency id, subject id).
    pub fn scope(principal: &Principal) -> Result<&str, ApiError> {
        principal
            .scope
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                ApiError::forbidden(
                    "no_scope",
                    format!(
                        "principal `{}` ({}) has no scope registered; ask the operator",
                        principal.id, principal.role
                    ),
                )
            })
    }

    /// Who to name in the audit log.
    pub fn actor(&self) -> (&str, &str) {
        match &self.0 {
            Some(principal) => (principal.id.as_str(), principal.role.as_str()),
            None => ("anonymous", "public"),
        }
    }
}

/// The answer to a request without a token where one is needed.
pub(crate) fn unauthenticated() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
        "this endpoint needs a token: send `Authorization: Bearer <token>`",
    )
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        let Some(header) = parts.headers.get(AUTHORIZATION) else {
            return Ok(Caller(None));
        };
        let bad =
            |why: &str| ApiError::new(StatusCode::UNAUTHORIZED, "invalid_token", why.to_string());
        let text = header
            .to_str()
            .map_err(|_| bad("the Authorization header is not ASCII"))?;
        // The scheme's name is case-insensitive (RFC 9110, 11.1).
        let token = text
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token)
            .ok_or_else(|| bad("the Authorization header must be `Bearer <token>`"))?
            .trim();
        if !plausible_token(token) {
            return Err(bad("the bearer token is malformed"));
        }
        let hash = hash_token(token);
        let cache = &state.inner.principals;
        let principal = match cache.get(&hash) {
            Some(principal) => principal,
            None => {
                let found = state
                    .store()
                    .principal_by_token_hash(&hash)
                    .await?
                    .map(Arc::new);
                cache.put(hash, found.clone());
                found
            }
        };
        match principal {
            Some(principal) => match principal.valid_until {
                Some(last) if state.today() > last => Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "token_expired",
                    format!(
                        "the token of principal `{}` worked until {last}; ask the operator for a new one",
                        principal.id
                    ),
                )),
                _ => Ok(Caller(Some(principal))),
            },
            None => Err(bad("the bearer token is unknown or was revoked")),
        }
    }
}
