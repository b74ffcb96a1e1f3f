//! DPoP at the token endpoint (RFC 9449 §5): a `DPoP` header binds what is issued to the
//! proof's key; at the pushed-request endpoint (§10.1) it binds the code to come. The proof
//! itself is judged by `tessera_jose::dpop`, here only what it must be about: `POST` to the
//! endpoint as discovery publishes it.
//!
//! Replayed proofs are refused by a per-node cache, not a shared table: every grant a
//! proof accompanies here is itself single use (codes, device codes, rotating refresh
//! tokens) or needs the client's credentials, so a proof replayed at another node within
//! its minute can only repeat a request that fails anyway, or one its sender could make.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use tessera_core::ResourceServer;
use tessera_jose::dpop::{DpopError, ProofContext, verify_proof};

use crate::AppState;
use crate::clock::now;
use crate::error::OAuthError;

/// RFC 9449 §5's error code.
pub(crate) fn invalid_dpop_proof(description: impl Into<String>) -> OAuthError {
    OAuthError::new(StatusCode::BAD_REQUEST, "invalid_dpop_proof", description)
}

/// The thumbprint of the key the request's `DPoP` header proves, if it has one;
/// `endpoint` is the path under the issuer the proof must name (`oauth/token`, or
/// `oauth/par`, where a proof binds the code as `dpop_jkt` does).
pub(super) fn proven_key(
    state: &AppState,
    headers: &HeaderMap,
    endpoint: &str,
) -> Result<Option<String>, OAuthError> {
    let mut proofs = headers.get_all("dpop").iter();
    let Some(proof) = proofs.next() else {
        return Ok(None);
    };
    if proofs.next().is_some() {
        return Err(invalid_dpop_proof("More than one DPoP header."));
    }
    let proof = proof
        .to_str()
        .map_err(|_| invalid_dpop_proof("The DPoP proof is malformed."))?;
    let now = now();
    let endpoint = format!("{}{endpoint}", state.issuer());
    let context = ProofContext {
        method: "POST",
        uri: &endpoint,
        access_token: None,
        now,
    };
    let verified = verify_proof(proof, &context).map_err(refusal)?;
    // Before the jti is remembered: the client retries with a new proof either way.
    if let Some(nonces) = state.dpop_nonces()
        && !nonces.accepts(verified.nonce.as_deref(), now)
    {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "use_dpop_nonce",
            "Authorization server requires nonce in DPoP proof.",
        ));
    }
    state.dpop_replay().check(&verified, now).map_err(refusal)?;
    Ok(Some(verified.jkt))
}

/// The `DPoP-Nonce` a response to this request carries: the current nonce, when nonces
/// are required and the request came with a proof (RFC 9449 §8: on errors and successes
/// alike, so a client always has the nonce to use next).
pub(super) fn nonce_for(state: &AppState, headers: &HeaderMap) -> Option<HeaderValue> {
    let nonces = state.dpop_nonces()?;
    headers.contains_key("dpop").then(|| {
        HeaderValue::from_str(&nonces.current(now())).expect("base64url is a header value")
    })
}

/// An API whose `proof_of_possession` requires DPoP gets tokens only for requests that
/// proved a key (Auth0's setting); checked before anything is spent where the API is known.
pub(super) fn require_for(
    api: Option<&ResourceServer>,
    dpop: Option<&str>,
) -> Result<(), OAuthError> {
    match api {
        Some(api) if api.requires_dpop() && dpop.is_none() => Err(OAuthError::invalid_request(
            "This API requires DPoP-bound tokens: send a DPoP proof.",
        )),
        _ => Ok(()),
    }
}

fn refusal(error: DpopError) -> OAuthError {
    if error == DpopError::Busy {
        let mut busy = OAuthError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            error.to_string(),
        );
        busy.retry_after = Some(2);
        return busy;
    }
    invalid_dpop_proof(error.to_string())
}
