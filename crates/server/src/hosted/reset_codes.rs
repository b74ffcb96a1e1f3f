//! Password reset codes by mail: what the mail worker (`mailer.rs`) sends when someone
//! asks for a code, and how codes are made and hashed. The pages that ask for and check
//! codes are `password_reset.rs`.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use tessera_core::{DATABASE_CONNECTION, ids};

use crate::clock::now;
use crate::hosted::mailer::{DeliveryError, MailContext};

/// Sends a code to `email` if an account of the database connection `connection` has it
/// and is not blocked.
pub(crate) async fn send_code(
    context: &MailContext,
    connection: &str,
    email: &str,
    origin: &crate::audit::Origin,
) -> Result<(), DeliveryError> {
    let MailContext {
        store,
        issuer,
        reset_code_lifetime: lifetime,
        ..
    } = context;
    let Some(mail) = context.transport().await? else {
        tracing::info!("no password reset mail: no mail transport");
        return Ok(());
    };
    let Some(user) = store.find_user_by_email_in(connection, email).await? else {
        return Ok(());
    };
    // Found by its email, so it has one; never mail an empty address all the same.
    let Some(to) = user.email.clone().filter(|email| !email.is_empty()) else {
        return Ok(());
    };
    if user.blocked {
        return Ok(());
    }
    let code = new_code();
    let now = now();
    store
        .put_password_reset_code(
            &user.user_id,
            &code_hash(&user.user_id, &code),
            now,
            now + lifetime.as_secs() as i64,
        )
        .await?;
    let minutes = lifetime.as_secs().div_ceil(60);
    // Connection names are letters, digits and `-`: safe in a query as they are.
    let code_page = if connection == DATABASE_CONNECTION {
        format!("{issuer}u/reset-password/code")
    } else {
        format!("{issuer}u/reset-password/code?connection={connection}")
    };
    let body = format!(
        "Hello,\n\n\
         someone, probably you, asked to reset the password of your account at {issuer}\n\n\
         Your code: {code}\n\n\
         It expires in {minutes} minutes. Enter it with your new password on the page where \
         you asked for it, or at {code_page}\n\n\
         If you did not ask for this, ignore this email: your password stays as it is.\n"
    );
    let sent = mail.send(&to, "Your password reset code", body).await;
    // The request is decided here, where the account is known and the mail goes: Auth0's
    // `scpr`, or `fcpr` when the mail could not be sent. Never the code.
    let mut event = match &sent {
        Ok(()) => crate::audit::event("scpr", "Password reset code sent"),
        Err(_) => crate::audit::event("fcpr", "The password reset mail could not be sent"),
    };
    event.user_id = Some(user.user_id.clone());
    event.user_name = Some(to.clone());
    event.connection = Some(connection.to_string());
    event.ip.clone_from(&origin.ip);
    event.user_agent.clone_from(&origin.user_agent);
    if context.audit.record(event).is_err() {
        tracing::warn!("audit log queue full or stopped; a password reset event was dropped");
    }
    sent?;
    tracing::info!(user_id = %user.user_id, "password reset code sent");
    Ok(())
}

/// Eight uniformly random digits.
fn new_code() -> String {
    let random = SystemRandom::new();
    loop {
        let mut bytes = [0u8; 4];
        random
            .fill(&mut bytes)
            .expect("the system random source works");
        let value = u32::from_le_bytes(bytes);
        // 4_200_000_000 = 42 * 10^8: values above would favour the low codes.
        if value < 4_200_000_000 {
            return format!("{:08}", value % 100_000_000);
        }
    }
}

/// Bound to the user, so equal codes of two users hash differently.
pub(crate) fn code_hash(user_id: &str, code: &str) -> Vec<u8> {
    ids::secret_hash(&format!("{user_id}:{code}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_eight_digits_and_vary() {
        let codes: std::collections::HashSet<String> = (0..50).map(|_| new_code()).collect();
        assert!(codes.len() > 45);
        assert!(
            codes
                .iter()
                .all(|c| c.len() == 8 && c.bytes().all(|b| b.is_ascii_digit()))
        );
        assert_ne!(code_hash("a", "12345678"), code_hash("b", "12345678"));
    }
}
