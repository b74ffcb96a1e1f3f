//! Logout tokens posted to a connection's back-channel URL (`/login/backchannel-logout/
//! CONNECTION`) by someone other than its provider, or by the provider about someone
//! else. A user signs in through the hostile test provider's `good` connection (`upstream`
//! module); then every forged, misdirected, stale, replayed or malformed token must be
//! refused with a 400 — or, naming a session or user that is not this one, end nothing —
//! and the session must still sign in silently. The control, the provider's own token
//! for that session, ends it once: the same token again is refused.
//!
//! A federated logout (`/v2/logout?federated`) sends the browser only to an end-session
//! endpoint Tessera would fetch from itself: a provider naming `javascript:`, plain http to
//! the network, 3 KB or a number there still signs users in, and its federated logout ends at
//! the application's return URL.

use aws_lc_rs::hmac;
use serde_json::{Value, json};
use tessera_jose::b64;
use tessera_testkit::{TestServer, browser, location, spawn};

use crate::harness::Tally;
use crate::upstream::{
    CLIENT_ID, CLIENT_SECRET, Ended, Provider, SID, SUB, connect, now, sign_in_with, start_provider,
};

const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// The provider's logout token for the signed-in session, as it would send it.
fn claims(provider: &Provider) -> Value {
    let now = now();
    json!({
        "iss": provider.issuer("good"),
        "aud": CLIENT_ID,
        "iat": now,
        "exp": now + 120,
        "jti": tessera_core::ids::secret_token(),
        "sub": SUB,
        "sid": SID,
        "events": {EVENT: {}},
    })
}

fn signed(provider: &Provider, claims: &Value) -> String {
    provider.key.sign_jwt("logout+jwt", claims).unwrap()
}

/// `claims` under a header of `alg` and a signature `sign` makes of the signing input.
fn forged(claims: &Value, alg: &str, sign: impl Fn(&str) -> String) -> String {
    let input = format!(
        "{}.{}",
        b64(json!({"alg": alg, "typ": "logout+jwt"})
            .to_string()
            .as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = sign(&input);
    format!("{input}.{signature}")
}

/// Posts `body` as `content_type` to the connection's back-channel URL: the status.
async fn post(server: &TestServer, connection: &str, content_type: &str, body: String) -> u16 {
    reqwest::Client::new()
        .post(server.url(&format!("/login/backchannel-logout/{connection}")))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn post_token(server: &TestServer, connection: &str, token: &str) -> u16 {
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("logout_token", token)
        .finish();
    post(server, connection, FORM, body).await
}

const FORM: &str = "application/x-www-form-urlencoded";

#[tokio::test]
async fn logout_tokens_not_from_the_provider_or_not_for_this_session_end_nothing() {
    let mut tally = Tally::new("upstream/logout_tokens");
    let provider = start_provider().await;
    let server = spawn().await;
    let token = server
        .management_token(&["create:connections", "read:connections"])
        .await;
    connect(&server, &token, &provider, "good").await;
    // Another connection to the same provider software, under another issuer.
    connect(&server, &token, &provider, "no-kid").await;
    let down = browser();
    let signed_in = matches!(
        sign_in_with(&server, "good", &down).await,
        Ended::App(ref params) if params.contains_key("code")
    );
    tally.case("the user signs in through h-good", signed_in, signed_in);

    let with = |change: &dyn Fn(&mut Value)| {
        let mut claims = claims(&provider);
        change(&mut claims);
        claims
    };
    let remove = |name: &'static str| {
        move |claims: &mut Value| {
            claims.as_object_mut().unwrap().remove(name);
        }
    };
    let set =
        |name: &'static str, value: Value| move |claims: &mut Value| claims[name] = value.clone();
    let now = now();
    let hostile: Vec<(&str, String)> = vec![
        (
            "signed by another key",
            provider
                .other
                .sign_jwt("logout+jwt", &claims(&provider))
                .unwrap(),
        ),
        (
            "alg none",
            forged(&claims(&provider), "none", |_| String::new()),
        ),
        (
            "HS256 keyed with the client secret",
            forged(&claims(&provider), "HS256", |input| {
                let key = hmac::Key::new(hmac::HMAC_SHA256, CLIENT_SECRET.as_bytes());
                b64(hmac::sign(&key, input.as_bytes()).as_ref())
            }),
        ),
        ("a signature cut off", {
            let token = signed(&provider, &claims(&provider));
            token[..token.rfind('.').unwrap() + 1].to_string()
        }),
        (
            "another issuer",
            signed(
                &provider,
                &with(&set("iss", json!("https://elsewhere.example/"))),
            ),
        ),
        (
            "the other connection's issuer",
            signed(
                &provider,
                &with(&set("iss", json!(provider.issuer("no-kid")))),
            ),
        ),
        (
            "another audience",
            signed(&provider, &with(&set("aud", json!("another-client")))),
        ),
        ("no audience", signed(&provider, &with(&remove("aud")))),
        ("no events", signed(&provider, &with(&remove("events")))),
        (
            "another event",
            signed(
                &provider,
                &with(&set("events", json!({"https://example.com/event": {}}))),
            ),
        ),
        (
            "the event not an object",
            signed(&provider, &with(&set("events", json!({EVENT: "yes"})))),
        ),
        (
            "a nonce, as an ID token has",
            signed(&provider, &with(&set("nonce", json!("n")))),
        ),
        (
            "the provider's ID token",
            provider.id_token("good", "a-nonce"),
        ),
        ("no jti", signed(&provider, &with(&remove("jti")))),
        (
            "a jti that is a number",
            signed(&provider, &with(&set("jti", json!(7)))),
        ),
        (
            "neither sub nor sid",
            signed(
                &provider,
                &with(&|claims: &mut Value| {
                    let claims = claims.as_object_mut().unwrap();
                    claims.remove("sub");
                    claims.remove("sid");
                }),
            ),
        ),
        (
            "a sid that is an object",
            signed(&provider, &with(&set("sid", json!({"sid": SID})))),
        ),
        (
            "a sid with a line break",
            signed(&provider, &with(&set("sid", json!(format!("{SID}\n"))))),
        ),
        (
            "a sid of 300 bytes",
            signed(&provider, &with(&set("sid", json!("s".repeat(300))))),
        ),
        (
            "a sub that is a number",
            signed(&provider, &with(&set("sub", json!(42)))),
        ),
        ("no iat", signed(&provider, &with(&remove("iat")))),
        (
            "iat an hour ahead",
            signed(&provider, &with(&set("iat", json!(now + 3600)))),
        ),
        (
            "iat an hour ago (exp still ahead)",
            signed(&provider, &with(&set("iat", json!(now - 3600)))),
        ),
        (
            "expired",
            signed(&provider, &with(&set("exp", json!(now - 600)))),
        ),
        (
            "typed as an access token",
            provider.key.sign_jwt("at+jwt", &claims(&provider)).unwrap(),
        ),
        ("not a JWT", "logout".to_string()),
    ];
    for (label, token) in &hostile {
        tally.status(
            format_args!("{label}: refused"),
            post_token(&server, "h-good", token).await,
            400,
        );
    }
    // The provider's genuine token, sent where it does not belong or not as a form.
    let genuine = signed(&provider, &claims(&provider));
    for (label, connection) in [
        ("to another connection of the same provider", "h-no-kid"),
        (
            "to the database connection",
            "Username-Password-Authentication",
        ),
        ("to a connection that does not exist", "h-nobody"),
    ] {
        tally.status(
            format_args!("the genuine token {label}: refused"),
            post_token(&server, connection, &genuine).await,
            400,
        );
    }
    let as_json = json!({"logout_token": genuine}).to_string();
    let twice = format!("logout_token={genuine}&logout_token={genuine}");
    for (label, content_type, body) in [
        ("as JSON", "application/json", as_json),
        (
            "as text/plain",
            "text/plain",
            format!("logout_token={genuine}"),
        ),
        ("twice in one form", FORM, twice),
        ("without the logout_token", FORM, "token=x".to_string()),
        ("empty", FORM, "logout_token=".to_string()),
    ] {
        tally.status(
            format_args!("the genuine token {label}: refused"),
            post(&server, "h-good", content_type, body).await,
            400,
        );
    }
    let huge = format!("logout_token={}", "a".repeat(100 * 1024));
    tally.status_in(
        "a 100 KB form: refused",
        post(&server, "h-good", FORM, huge).await,
        &[400, 413],
    );
    // Genuine tokens about another session or user end nothing of this one.
    let another_subject_alone = |claims: &mut Value| {
        claims["sub"] = json!("someone-else");
        claims.as_object_mut().unwrap().remove("sid");
    };
    let others: [(&str, Value); 3] = [
        (
            "another provider session",
            with(&set("sid", json!("another-sid"))),
        ),
        ("another subject, no session", with(&another_subject_alone)),
        (
            "this provider session of another subject",
            with(&set("sub", json!("someone-else"))),
        ),
    ];
    for (label, claims) in others {
        let status = post_token(&server, "h-good", &signed(&provider, &claims)).await;
        let alive = server.signs_in_silently(&down).await;
        tally.case(
            format_args!("a token for {label}: taken, this session lives on"),
            status == 200 && alive,
            format_args!("{status}, alive {alive}"),
        );
    }
    let alive = server.signs_in_silently(&down).await;
    tally.case(
        "after every refusal the session still signs in",
        alive,
        alive,
    );

    // The control: the provider's own token ends the session, once.
    let status = post_token(&server, "h-good", &genuine).await;
    let alive = server.signs_in_silently(&down).await;
    tally.case(
        "the control: the provider's token ends the session",
        status == 200 && !alive,
        format_args!("{status}, alive {alive}"),
    );
    tally.status(
        "the same token again: refused",
        post_token(&server, "h-good", &genuine).await,
        400,
    );
    tally.finish();
}

#[tokio::test]
async fn a_federated_logout_goes_only_to_a_usable_end_session_endpoint() {
    let mut tally = Tally::new("upstream/federated_logout");
    let provider = start_provider().await;
    let server = spawn().await;
    let token = server
        .management_token(&["create:connections", "read:connections", "update:clients"])
        .await;
    let back = "https://app.example/signed-out";
    let response = reqwest::Client::new()
        .patch(server.url(&format!("/api/v2/clients/{}", server.spa_client_id)))
        .bearer_auth(&token)
        .json(&json!({"allowed_logout_urls": [back]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let logout = server.url(&format!(
        "/v2/logout?federated&client_id={}&returnTo={}",
        server.spa_client_id,
        form_urlencoded::byte_serialize(back.as_bytes()).collect::<String>()
    ));
    for defect in [
        "good",
        "end-session-javascript",
        "end-session-network",
        "end-session-huge",
        "end-session-number",
    ] {
        connect(&server, &token, &provider, defect).await;
        let down = browser();
        let signed_in = matches!(
            sign_in_with(&server, defect, &down).await,
            Ended::App(ref params) if params.contains_key("code")
        );
        tally.case(
            format_args!("{defect}: signs its user in"),
            signed_in,
            signed_in,
        );
        let to = location(&down.get(&logout).send().await.unwrap());
        let expected = if defect == "good" {
            format!(
                "{}/good/logout?client_id={CLIENT_ID}&post_logout_redirect_uri={}",
                provider.base,
                form_urlencoded::byte_serialize(back.as_bytes()).collect::<String>()
            )
        } else {
            back.to_string()
        };
        let ended = !server.signs_in_silently(&down).await;
        tally.case(
            format_args!("{defect}: the federated logout ends here and goes to {expected}"),
            to == expected && ended,
            format_args!("{to}, ended {ended}"),
        );
    }
    tally.finish();
}
