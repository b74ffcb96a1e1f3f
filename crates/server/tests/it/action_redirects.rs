//! Redirect actions (`api.redirect`): a post-login action sends the user to another site,
//! the login waits, and it finishes when the user comes back to `/continue` — with the
//! action's `onContinuePostLogin`, then the actions bound after it. The session tokens
//! both ways are HS256 JWTs under a secret the action and the site share.

use reqwest::Method;
use serde_json::{Value, json};
use tessera_testkit::*;

use crate::actions::{call, payload};

/// The secret every action here gets as `event.secrets.GREETING` (`bind_all`), shared
/// with the "site" below.
const SECRET: &str = "hello from a secret";
const SITE: &str = "https://terms.example/accept";

/// Creates and deploys each `(name, code)` and binds them to post-login in this order.
/// Returns the actions' ids and a Management API token.
async fn bind_all(server: &TestServer, actions: &[(&str, &str)]) -> (Vec<String>, String) {
    let token = server
        .management_token(&[
            "read:actions",
            "create:actions",
            "update:actions",
            "update:users",
        ])
        .await;
    let mut ids = Vec::new();
    for (name, code) in actions {
        let secrets = [("GREETING", SECRET)];
        ids.push(
            server
                .deploy_action(&token, ("post-login", name), code, &secrets)
                .await,
        );
    }
    server.bind_actions(&token, "post-login", &ids).await;
    (ids, token)
}

/// Sends the user to the terms site with a session token, and on the way back reads the
/// site's answer (`answer`, a token under the same secret).
const TERMS: &str = r#"
exports.onExecutePostLogin = async (event, api) => {
  api.idToken.setCustomClaim('https://example.com/before', 'kept');
  api.accessToken.addScope('read:messages');
  api.refreshToken.setMetadata('before', 'redirect').refreshToken.setMetadata('gone', 'soon');
  const token = api.redirect.encodeToken({
    secret: event.secrets.GREETING,
    payload: { email: event.user.email },
    expiresInSeconds: 120,
  });
  api.redirect.sendUserTo('https://terms.example/accept', { query: { session_token: token, lang: 'en' } });
};
exports.onContinuePostLogin = async (event, api) => {
  const answer = api.redirect.validateToken({ secret: event.secrets.GREETING, tokenParameterName: 'answer' });
  api.idToken.setCustomClaim('https://example.com/accepted', answer.accepted);
  api.idToken.setCustomClaim('https://example.com/method', event.request.method);
  api.user.setAppMetadata('terms_accepted', answer.accepted);
  api.refreshToken.setMetadata('accepted', String(answer.accepted)).refreshToken.deleteMetadata('gone');
};
"#;

/// Runs after the redirecting action: it must not run before the user is back.
const AFTER: &str = r#"
exports.onExecutePostLogin = async (event, api) => {
  api.idToken.setCustomClaim('https://example.com/after', event.request.method === 'POST' ? 'after the return' : 'too early');
};
"#;

/// What the terms site sends back: a token under the shared secret naming the user and
/// the state it was given.
fn site_answer(secret: &str, claims: Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn answer_claims(server: &TestServer, state: &str) -> Value {
    json!({
        "iss": "terms.example",
        "sub": server.user_id,
        "state": state,
        "iat": now(),
        "exp": now() + 60,
        "accepted": true,
    })
}

/// Signs in through the hosted form with a code request; returns where the browser was
/// sent and the PKCE verifier.
async fn sign_in_to_redirect(server: &TestServer, browser: &reqwest::Client) -> (String, String) {
    let pkce = pkce();
    let url = server.authorize_url(&[
        ("response_type", "code"),
        ("scope", "openid offline_access read:messages"),
        ("audience", API),
        ("state", "app-state"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]);
    (server.sign_in(browser, &url).await, pkce.verifier)
}

async fn continue_with(
    server: &TestServer,
    browser: &reqwest::Client,
    form: &[(&str, &str)],
) -> reqwest::Response {
    browser
        .post(server.url("/continue"))
        .form(form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_redirect_action_suspends_the_login_until_the_user_comes_back() {
    let server = spawn().await;
    bind_all(&server, &[("terms", TERMS), ("after", AFTER)]).await;
    let browser = browser();
    let (away, verifier) = sign_in_to_redirect(&server, &browser).await;

    // The browser goes to the site, with the action's parameters and the state.
    assert!(away.starts_with(&format!("{SITE}?")), "{away}");
    let params = params_of(&away);
    assert_eq!(params["lang"], "en");
    assert!(!params.contains_key("code"), "{away}");
    let state = params["state"].clone();
    assert!(state.len() >= 32, "an unguessable state: {state}");
    // The session token is HS256 under the action's secret, naming the user and the state.
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.validate_aud = false;
    let session_token = jsonwebtoken::decode::<Value>(
        &params["session_token"],
        &jsonwebtoken::DecodingKey::from_secret(SECRET.as_bytes()).unwrap(),
        &validation,
    )
    .expect("the session token verifies under the shared secret")
    .claims;
    assert_eq!(session_token["email"], json!(server.user_email));
    assert_eq!(session_token["sub"], json!(server.user_id));
    assert_eq!(session_token["state"], json!(state));
    assert_eq!(session_token["iss"], "127.0.0.1");
    let lifetime = session_token["exp"].as_i64().unwrap() - session_token["iat"].as_i64().unwrap();
    assert_eq!(lifetime, 120);

    // The site posts its answer to /continue: the login finishes at the application.
    let answer = site_answer(SECRET, answer_claims(&server, &state));
    let response =
        continue_with(&server, &browser, &[("state", &state), ("answer", &answer)]).await;
    let back = location(&response);
    assert!(back.starts_with(CALLBACK), "{back}");
    let params = params_of(&back);
    assert_eq!(params["state"], "app-state");
    let (status, tokens) = server.redeem(&params["code"], &verifier).await;
    assert_eq!(status, 200, "{tokens}");
    let id_token = payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(id_token["https://example.com/before"], "kept", "{id_token}");
    assert_eq!(id_token["https://example.com/accepted"], true);
    assert_eq!(id_token["https://example.com/method"], "POST");
    assert_eq!(
        id_token["https://example.com/after"], "after the return",
        "the action bound after it ran once the user was back: {id_token}"
    );
    let access = server
        .verify(tokens["access_token"].as_str().unwrap(), API)
        .await;
    assert!(
        access["scope"].as_str().unwrap().contains("read:messages"),
        "the scope asked before the redirect is kept: {access}"
    );
    let user = server
        .store
        .find_user(&server.user_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.app_metadata["terms_accepted"], true);
    // The refresh token carries what both halves wrote on it, in order.
    let hash = tessera_core::ids::secret_hash(tokens["refresh_token"].as_str().unwrap());
    let family = server
        .store
        .find_refresh_family(&hash, now())
        .await
        .unwrap()
        .expect("a live refresh token");
    assert_eq!(
        json!(family.metadata),
        json!({"before": "redirect", "accepted": "true"})
    );
}

#[tokio::test]
async fn the_way_back_is_taken_once_by_the_browser_and_session_that_left() {
    let server = spawn().await;
    bind_all(&server, &[("terms", TERMS)]).await;
    let browser = browser();
    let (away, _) = sign_in_to_redirect(&server, &browser).await;
    let state = params_of(&away)["state"].clone();
    let answer = site_answer(SECRET, answer_claims(&server, &state));
    let form = [("state", state.as_str()), ("answer", answer.as_str())];

    // Another browser with the state and a valid answer: refused, and nothing is spent.
    let stranger = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let refused = continue_with(&server, &stranger, &form).await;
    assert_eq!(refused.status(), 403);
    assert!(refused.headers().get("location").is_none());

    let first = continue_with(&server, &browser, &form).await;
    assert!(params_of(&location(&first)).contains_key("code"));
    // The same state again (a replay, a double submit): the login is gone.
    let again = continue_with(&server, &browser, &form).await;
    assert_eq!(again.status(), 400);
    assert!(again.headers().get("location").is_none());
}

#[tokio::test]
async fn a_session_ended_while_away_does_not_come_back() {
    let server = spawn().await;
    bind_all(&server, &[("terms", TERMS)]).await;
    let browser = browser();
    let (away, _) = sign_in_to_redirect(&server, &browser).await;
    let state = params_of(&away)["state"].clone();
    let logout = browser.get(server.url("/v2/logout")).send().await.unwrap();
    assert!(logout.status().is_redirection() || logout.status().is_success());
    let answer = site_answer(SECRET, answer_claims(&server, &state));
    let response =
        continue_with(&server, &browser, &[("state", &state), ("answer", &answer)]).await;
    let params = params_of(&location(&response));
    assert_eq!(params["error"], "login_required", "{params:?}");
    assert!(!params.contains_key("code"));
}

#[tokio::test]
async fn a_bad_answer_from_the_site_fails_the_login_closed() {
    let server = spawn().await;
    bind_all(&server, &[("terms", TERMS)]).await;
    type Forge = Box<dyn Fn(&TestServer, &str) -> String>;
    let cases: Vec<(&str, Forge)> = vec![
        (
            "another secret",
            Box::new(|server, state| site_answer("not the secret", answer_claims(server, state))),
        ),
        (
            "another state",
            Box::new(|server, _| site_answer(SECRET, answer_claims(server, "someone-elses-state"))),
        ),
        (
            "another user",
            Box::new(|server, state| {
                let mut claims = answer_claims(server, state);
                claims["sub"] = json!("auth0|someone-else");
                site_answer(SECRET, claims)
            }),
        ),
        (
            "expired",
            Box::new(|server, state| {
                let mut claims = answer_claims(server, state);
                claims["exp"] = json!(now() - 5);
                site_answer(SECRET, claims)
            }),
        ),
        (
            "unsigned",
            Box::new(|server, state| {
                use base64::Engine;
                let b64 = |value: Value| {
                    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
                };
                format!(
                    "{}.{}.",
                    b64(json!({"alg": "none", "typ": "JWT"})),
                    b64(answer_claims(server, state))
                )
            }),
        ),
    ];
    for (case, answer) in cases {
        let browser = browser();
        let (away, _) = sign_in_to_redirect(&server, &browser).await;
        let state = params_of(&away)["state"].clone();
        let answer = answer(&server, &state);
        let response =
            continue_with(&server, &browser, &[("state", &state), ("answer", &answer)]).await;
        let back = location(&response);
        let params = params_of(&back);
        assert_eq!(params["error"], "access_denied", "{case}: {back}");
        assert!(!params.contains_key("code"), "{case}: {back}");
        assert!(!back.contains(SECRET), "{case}: {back}");
    }
}

#[tokio::test]
async fn no_redirect_where_no_browser_waits() {
    let server = spawn().await;
    // Reports canRedirect(); sends the user away only when asked to by the request.
    let probe = r#"
exports.onExecutePostLogin = async (event, api) => {
  api.idToken.setCustomClaim('https://example.com/can', api.redirect.canRedirect());
  if (event.transaction.protocol === 'oauth2-refresh-token' && event.user.app_metadata.send_away) {
    api.redirect.sendUserTo('https://terms.example/again');
  }
};
"#;
    let (_, token) = bind_all(&server, &[("probe", probe)]).await;
    let tokens = server
        .code_flow(&browser(), "openid offline_access read:messages", Some(API))
        .await;
    let id_token = payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(id_token["https://example.com/can"], true, "{id_token}");
    let (status, refreshed) = server
        .refresh(tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, 200, "{refreshed}");
    let id_token = payload(refreshed["id_token"].as_str().unwrap());
    assert_eq!(id_token["https://example.com/can"], false, "{id_token}");

    // An action that redirects anyway during a refresh fails it closed.
    call(
        &server,
        &token,
        Method::PATCH,
        &format!("/users/{}", server.user_id),
        json!({"app_metadata": {"send_away": true}}),
    )
    .await;
    let (status, refused) = server
        .refresh(refreshed["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["error"], "access_denied");
}

#[tokio::test]
async fn a_binding_changed_or_removed_while_the_user_was_away_fails_the_login() {
    let server = spawn().await;
    let (ids, token) = bind_all(&server, &[("terms", TERMS), ("after", AFTER)]).await;
    let browser = browser();
    let (away, _) = sign_in_to_redirect(&server, &browser).await;
    let state = params_of(&away)["state"].clone();
    // The redirecting action is moved after the other one meanwhile.
    let swapped = [ids[1].clone(), ids[0].clone()];
    server.bind_actions(&token, "post-login", &swapped).await;
    let answer = site_answer(SECRET, answer_claims(&server, &state));
    let response =
        continue_with(&server, &browser, &[("state", &state), ("answer", &answer)]).await;
    let params = params_of(&location(&response));
    assert_eq!(params["error"], "access_denied", "{params:?}");
    assert!(!params.contains_key("code"));

    // Every action unbound meanwhile: nothing would check the answer, so no code either.
    server.bind_actions(&token, "post-login", &ids).await;
    let second = tessera_testkit::browser();
    let (away, _) = sign_in_to_redirect(&server, &second).await;
    let state = params_of(&away)["state"].clone();
    server.bind_actions(&token, "post-login", &[]).await;
    let response = continue_with(&server, &second, &[("state", &state)]).await;
    let params = params_of(&location(&response));
    assert_eq!(params["error"], "access_denied", "{params:?}");
    assert!(!params.contains_key("code"));
}
