//! OpenEventSession: hands an authenticated caller's browser a cookie its EventSource can
//! use on the SSE routes (see `auth::Sessions` for why a cookie, and why only there).

use std::time::Duration;

use streamgate::proto::{OpenEventSessionRequest, OpenEventSessionResponse};
use tonic::metadata::MetadataValue;
use tonic::{Response, Status};

use crate::auth::{Credential, Principal, SESSION_COOKIE, SessionOpenError, Sessions};

/// Opens a session for `principal`, or answers that none is needed.
pub fn open(
    sessions: &Sessions,
    principal: &Principal,
    request: &OpenEventSessionRequest,
) -> Result<Response<OpenEventSessionResponse>, Status> {
    // Checked first, so that a request is refused alike whether the server is locked or not.
    let ttl = ttl(request)?;
    match principal.credential() {
        // Nothing to remember: every SSE request is this principal already.
        Credential::Open => return Ok(Response::new(OpenEventSessionResponse::default())),
        // The SSE routes cannot call this; a session must not beget sessions.
        Credential::Session => {
            return Err(Status::permission_denied(
                "an event session cannot open another: call OpenEventSession with the credential itself",
            ));
        }
        Credential::Token | Credential::Jwt | Credential::Certificate => {}
    }
    let opened = sessions.open(principal, ttl).map_err(|e| match e {
        SessionOpenError::Full(_) => Status::resource_exhausted(e.to_string()),
        SessionOpenError::Expired => Status::unauthenticated(e.to_string()),
    })?;
    let cookie = MetadataValue::try_from(opened.set_cookie.as_str())
        .map_err(|_| Status::internal("the session cookie is not a header value"))?;
    let mut response = Response::new(OpenEventSessionResponse {
        expires_at: Some(opened.expires.into()),
        cookie_name: SESSION_COOKIE.to_owned(),
    });
    response.metadata_mut().insert("set-cookie", cookie);
    Ok(response)
}

/// The lifetime asked for; `None` for the default.
fn ttl(request: &OpenEventSessionRequest) -> Result<Option<Duration>, Status> {
    let Some(ttl) = request.ttl else {
        return Ok(None);
    };
    Duration::try_from(ttl)
        .map(Some)
        .map_err(|_| Status::invalid_argument("ttl must not be negative"))
}
