//! The OAuth 2.0 / OpenID Connect protocol endpoints: `/authorize` and its resumption,
//! `/oauth/token` and `/oauth/revoke`, `/userinfo`, logout, discovery and JWKS; the
//! authorization response's delivery and the minting of tokens. What is granted comes from
//! the grant pipeline (`crate::grant`); signing in and consent happen on the hosted pages
//! (`crate::hosted`), which hand back to `/authorize/resume`.

pub(crate) mod authorize;
pub(crate) mod discovery;
pub(crate) mod issue;
pub(crate) mod logout;
pub(crate) mod respond;
pub(crate) mod token;
pub(crate) mod userinfo;
