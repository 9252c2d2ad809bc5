//! `GET /v1/me`: the principal a token stands for (its id, name, role and
//! scope), so that a client such as the web portal knows who signed in and
//! what to offer. Any valid token may ask; the answer is the caller's own
//! registration, never anybody's credit file.

use axum::Json;
use socred_store::{Principal, Role};

use crate::auth::Caller;
use crate::error::ApiError;

pub async fn me(caller: Caller) -> Result<Json<Principal>, ApiError> {
    let principal = caller.require(&Role::ALL)?;
    Ok(Json(principal.clone()))
}
