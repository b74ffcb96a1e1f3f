//! The pages a person sees during a login transaction: login and sign-up, consent, password
//! reset; the device flow's activation page; the page a verification link opens; the mail the server sends (`mailer.rs`); and
//! the browser's session and CSRF cookies. They never answer the application themselves:
//! each step hands back to `/authorize/resume`.

pub(crate) mod consent;
pub(crate) mod dbconnections;
pub(crate) mod device;
pub(crate) mod email_verification;
pub(crate) mod forms;
pub(crate) mod login;
pub(crate) mod mailer;
pub(crate) mod mfa;
pub(crate) mod passkey;
pub(crate) mod password_reset;
pub(crate) mod reset_codes;
pub(crate) mod session;
pub(crate) mod ticket_links;
pub(crate) mod transaction;
pub(crate) mod unblock;
pub(crate) mod upstream;
