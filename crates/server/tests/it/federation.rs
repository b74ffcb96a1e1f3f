//! Signing in through an upstream OpenID Connect provider. The provider is a real one: a
//! second Tessera, started here, with a regular web application whose callback is the
//! first one's `/login/callback`. Two cookie jars stand for the two sites. What the
//! downstream application gets is checked end to end: its code, tokens and the user it
//! names (`oidc|CONNECTION|sub`, the provider's email and `email_verified`), and the
//! refusals — a connection not enabled, a replayed callback, a callback from another
//! browser or without a transaction, the provider's refusal, a blocked user, an existing
//! password account with the same email left alone.

use reqwest::Method;
use serde_json::{Value, json};
use tessera_testkit::{
    CALLBACK, TestServer, browser, location, meta_refresh_target, params_of, pkce, spawn,
};

/// `/api/v2{path}` on `server` with every scope this test needs.
async fn management(
    server: &TestServer,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let token = server
        .management_token(&[
            "read:clients",
            "create:clients",
            "update:clients",
            "read:connections",
            "create:connections",
            "update:connections",
            "read:users",
            "update:users",
        ])
        .await;
    let mut request = reqwest::Client::new()
        .request(method, server.url(&format!("/api/v2{path}")))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

struct Federation {
    upstream: TestServer,
    downstream: TestServer,
    connection_id: String,
    /// The downstream server's client at the provider.
    app_id: String,
}

/// Two Tessera servers: `upstream` knows `downstream` as a regular web application,
/// `downstream` has the connection `acme` to it, enabled for its SPA.
async fn federation() -> Federation {
    federation_asking("openid profile email").await
}

/// [`federation`] whose connection asks the provider for `scopes`.
async fn federation_asking(scopes: &str) -> Federation {
    let upstream = spawn().await;
    let downstream = spawn().await;
    let (status, app) = management(
        &upstream,
        Method::POST,
        "/clients",
        Some(json!({
            "name": "Downstream Tessera",
            "app_type": "regular_web",
            "callbacks": [format!("{}login/callback", downstream.issuer)],
        })),
    )
    .await;
    assert_eq!(status, 201, "{app}");
    let (status, connection) = management(
        &downstream,
        Method::POST,
        "/connections",
        Some(json!({
            "name": "acme",
            "display_name": "Acme",
            "strategy": "oidc",
            "options": {
                "discovery_url": format!("{}.well-known/openid-configuration", upstream.issuer),
                "client_id": app["client_id"],
                "client_secret": app["client_secret"],
                "scopes": scopes,
            },
            "enabled_clients": [downstream.spa_client_id],
        })),
    )
    .await;
    assert_eq!(status, 201, "{connection}");
    Federation {
        connection_id: connection["id"].as_str().unwrap().to_string(),
        app_id: app["client_id"].as_str().unwrap().to_string(),
        upstream,
        downstream,
    }
}

/// The downstream /authorize for its SPA through `connection`, and the PKCE verifier.
fn authorize(f: &Federation, connection: &str) -> (String, String) {
    let pkce = pkce();
    let url = f.downstream.authorize_url(&[
        ("response_type", "code"),
        ("scope", "openid profile email"),
        ("state", "app-state"),
        ("nonce", "app-nonce"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("connection", connection),
    ]);
    (url, pkce.verifier)
}

/// Runs the browser from the downstream /authorize to the provider's answer at the
/// downstream callback; returns that callback URL (not yet visited).
async fn to_the_callback(
    f: &Federation,
    down: &reqwest::Client,
    up: &reqwest::Client,
    url: &str,
) -> String {
    let response = down.get(url).send().await.unwrap();
    assert_eq!(response.status(), 302);
    let at_provider = location(&response);
    assert!(
        at_provider.starts_with(&format!("{}/authorize?", f.upstream.base)),
        "{at_provider}"
    );
    let sent = params_of(&at_provider);
    assert_eq!(sent["code_challenge_method"], "S256");
    assert_eq!(
        sent["redirect_uri"],
        format!("{}login/callback", f.downstream.issuer)
    );
    assert!(
        sent["nonce"].len() >= 43 && sent["state"].len() >= 32,
        "{sent:?}"
    );
    let back = f.upstream.sign_in(up, &at_provider).await;
    assert!(
        back.starts_with(&format!("{}login/callback?", f.downstream.issuer)),
        "{back}"
    );
    back
}

/// Visits the callback and follows the downstream server to the application.
async fn finish(f: &Federation, down: &reqwest::Client, callback: &str) -> String {
    let response = down.get(callback).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let resume = meta_refresh_target(&response.text().await.unwrap());
    assert!(resume.starts_with("/authorize/resume?state="), "{resume}");
    let response = down.get(f.downstream.url(&resume)).send().await.unwrap();
    assert_eq!(response.status(), 302);
    location(&response)
}

fn claims_of(jwt: &str) -> Value {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_user_of_the_provider_signs_in_to_the_application() {
    let f = federation().await;
    let (down, up) = (browser(), browser());
    let (url, verifier) = authorize(&f, "acme");
    let callback = to_the_callback(&f, &down, &up, &url).await;
    let at_app = finish(&f, &down, &callback).await;
    assert!(at_app.starts_with(CALLBACK), "{at_app}");
    let params = params_of(&at_app);
    assert_eq!(params["state"], "app-state");
    let (status, tokens) = f.downstream.redeem(&params["code"], &verifier).await;
    assert_eq!(status, 200, "{tokens}");
    let id_token = claims_of(tokens["id_token"].as_str().unwrap());
    let user_id = format!("oidc|acme|{}", f.upstream.user_id);
    assert_eq!(id_token["sub"], user_id.as_str());
    assert_eq!(id_token["email"], f.upstream.user_email.as_str());
    assert_eq!(id_token["nonce"], "app-nonce");

    // The user, as the Management API shows it: the provider's identity, its email as
    // the provider said, no password.
    let (status, user) = management(
        &f.downstream,
        Method::GET,
        &format!("/users/{}", urlencode(&user_id)),
        None,
    )
    .await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(
        user["identities"],
        json!([{"connection": "acme", "isSocial": false, "provider": "oidc",
                "user_id": format!("acme|{}", f.upstream.user_id)}])
    );
    assert_eq!(user["logins_count"], 1);
    let stored = f
        .downstream
        .store
        .find_user(&user_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.connection, "acme");
    assert!(
        f.downstream
            .store
            .find_user_with_password(&f.upstream.user_email)
            .await
            .unwrap()
            .is_none_or(|(user, _)| user.user_id != user_id),
        "a federated user never signs in with a password"
    );

    // A second sign-in is the same user, its profile read again.
    let (down, up) = (browser(), browser());
    let (url, verifier) = authorize(&f, "acme");
    let callback = to_the_callback(&f, &down, &up, &url).await;
    let params = params_of(&finish(&f, &down, &callback).await);
    let (_, tokens) = f.downstream.redeem(&params["code"], &verifier).await;
    assert_eq!(
        claims_of(tokens["id_token"].as_str().unwrap())["sub"],
        user_id.as_str()
    );
    let again = f
        .downstream
        .store
        .find_user(&user_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.logins_count, 2);
}

fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test]
async fn a_provider_asked_without_the_email_scope_signs_its_user_in_without_one() {
    // Asked without `email`, the upstream's ID token carries none: as on Auth0 the user
    // is signed in all the same, and has no email.
    let f = federation_asking("openid profile").await;
    let user_id = format!("oidc|acme|{}", f.upstream.user_id);
    let mut logins = 0;
    for _ in 0..2 {
        let (down, up) = (browser(), browser());
        let (url, verifier) = authorize(&f, "acme");
        let callback = to_the_callback(&f, &down, &up, &url).await;
        let at_app = finish(&f, &down, &callback).await;
        let params = params_of(&at_app);
        assert!(params.contains_key("code"), "{at_app}");
        let (status, tokens) = f.downstream.redeem(&params["code"], &verifier).await;
        assert_eq!(status, 200, "{tokens}");
        logins += 1;
        let id_token = claims_of(tokens["id_token"].as_str().unwrap());
        assert_eq!(id_token["sub"], user_id.as_str());
        assert!(id_token.get("email").is_none(), "{id_token}");
        assert!(id_token.get("email_verified").is_none(), "{id_token}");
        assert!(id_token["nickname"].is_string(), "the profile is there");
        let userinfo: Value = reqwest::Client::new()
            .get(f.downstream.url("/userinfo"))
            .bearer_auth(tokens["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(userinfo["sub"], user_id.as_str());
        assert!(userinfo.get("email").is_none(), "{userinfo}");
        assert!(userinfo.get("email_verified").is_none(), "{userinfo}");

        // The same user each time, as the Management API shows it: no email members.
        let (status, user) = management(
            &f.downstream,
            Method::GET,
            &format!("/users/{}", urlencode(&user_id)),
            None,
        )
        .await;
        assert_eq!(status, 200, "{user}");
        assert!(user.get("email").is_none(), "{user}");
        assert!(user.get("email_verified").is_none(), "{user}");
        assert_eq!(user["logins_count"], logins);
        assert_eq!(user["identities"][0]["provider"], "oidc");
    }

    // Listed among the others, in every order and search that reads email.
    for query in [
        "",
        "?sort=email:1",
        "?sort=email:-1&include_totals=true",
        "?q=identities.connection:acme",
    ] {
        let (status, page) =
            management(&f.downstream, Method::GET, &format!("/users{query}"), None).await;
        assert_eq!(status, 200, "{query}: {page}");
        let users = page
            .get("users")
            .unwrap_or(&page)
            .as_array()
            .unwrap()
            .clone();
        let found: Vec<&Value> = users
            .iter()
            .filter(|u| u["user_id"] == user_id.as_str())
            .collect();
        assert_eq!(found.len(), 1, "{query}: {page}");
        assert!(found[0].get("email").is_none(), "{query}");
    }
    let (status, page) = management(
        &f.downstream,
        Method::GET,
        &format!("/users?q=email:{}", urlencode("\"\"")),
        None,
    )
    .await;
    assert!(
        status == 400 || page.as_array().is_some_and(|users| users.is_empty()),
        "{status} {page}"
    );
    let (status, _) = management(&f.downstream, Method::GET, "/users-by-email?email=", None).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn an_existing_password_account_with_the_same_email_is_left_alone() {
    // Both servers seed demo@example.com: the downstream one is a password account.
    let f = federation().await;
    assert_eq!(f.downstream.user_email, f.upstream.user_email);
    let (down, up) = (browser(), browser());
    let (url, verifier) = authorize(&f, "acme");
    let callback = to_the_callback(&f, &down, &up, &url).await;
    let params = params_of(&finish(&f, &down, &callback).await);
    let (_, tokens) = f.downstream.redeem(&params["code"], &verifier).await;
    let sub = claims_of(tokens["id_token"].as_str().unwrap())["sub"].clone();
    assert_ne!(
        sub,
        f.downstream.user_id.as_str(),
        "never the password account"
    );
    assert!(sub.as_str().unwrap().starts_with("oidc|acme|"));
    let local = f
        .downstream
        .store
        .find_user(&f.downstream.user_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        local.logins_count, 0,
        "the password account was not signed in"
    );
}

#[tokio::test]
async fn callbacks_that_are_not_this_browsers_live_sign_in_are_refused() {
    let f = federation().await;
    let (down, up) = (browser(), browser());
    let (url, _) = authorize(&f, "acme");
    let callback = to_the_callback(&f, &down, &up, &url).await;

    // Another browser with the same callback: not its transaction.
    let response = browser().get(&callback).send().await.unwrap();
    assert_eq!(response.status(), 403);
    // No transaction at all, or an unknown one.
    for path in [
        "/login/callback?code=x",
        "/login/callback?code=x&state=nope",
    ] {
        let response = down.get(f.downstream.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 400, "{path}");
    }
    // The right browser once; the replay finds nothing.
    let response = down.get(&callback).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let replay = down.get(&callback).send().await.unwrap();
    assert_eq!(
        replay.status(),
        400,
        "a replayed callback must not sign in again"
    );
}

#[tokio::test]
async fn the_providers_refusal_and_a_blocked_user_reach_the_application() {
    let f = federation().await;
    // The provider says no: error=access_denied on the callback.
    let (down, _) = (browser(), browser());
    let (url, _) = authorize(&f, "acme");
    let response = down.get(&url).send().await.unwrap();
    let state = params_of(&location(&response))["state"].clone();
    let refused = format!(
        "{}login/callback?error=access_denied&error_description=no&state={state}",
        f.downstream.issuer
    );
    let at_app = finish(&f, &down, &refused).await;
    let params = params_of(&at_app);
    assert_eq!(params["error"], "access_denied", "{at_app}");
    assert_eq!(params["state"], "app-state");
    assert!(params["error_description"].contains("Acme"), "{at_app}");

    // An error that is no OAuth error name (here a token's look) is not repeated.
    let token_like = "eyJhbGciOiJIUzI1NiJ9_eyJzdWIiOiJ1c2VyIn0_c2lnbmF0dXJl";
    let down = browser();
    let (url, _) = authorize(&f, "acme");
    let response = down.get(&url).send().await.unwrap();
    let state = params_of(&location(&response))["state"].clone();
    let echoed = format!(
        "{}login/callback?error={token_like}&state={state}",
        f.downstream.issuer
    );
    let at_app = finish(&f, &down, &echoed).await;
    assert_eq!(params_of(&at_app)["error"], "access_denied");
    assert!(!at_app.contains(token_like), "{at_app}");
    assert!(at_app.contains("unrecognized_error"), "{at_app}");

    // A code the provider never issued fails at its token endpoint.
    let (down, _) = (browser(), browser());
    let (url, _) = authorize(&f, "acme");
    let response = down.get(&url).send().await.unwrap();
    let state = params_of(&location(&response))["state"].clone();
    let forged = format!(
        "{}login/callback?code=forged&state={state}&iss={}",
        f.downstream.issuer,
        urlencode(&f.upstream.issuer)
    );
    let params = params_of(&finish(&f, &down, &forged).await);
    assert_eq!(params["error"], "access_denied");
    assert!(
        params["error_description"].contains("token endpoint"),
        "{params:?}"
    );

    // RFC 9207: the provider (a Tessera) promises `iss` in its answers; one naming another
    // issuer, or none, is refused before the code goes anywhere.
    for iss in [Some("https://mix-up.example/"), None] {
        let (down, _) = (browser(), browser());
        let (url, _) = authorize(&f, "acme");
        let response = down.get(&url).send().await.unwrap();
        let state = params_of(&location(&response))["state"].clone();
        let mixed = format!(
            "{}login/callback?code=forged&state={state}{}",
            f.downstream.issuer,
            iss.map(|iss| format!("&iss={}", urlencode(iss)))
                .unwrap_or_default()
        );
        let params = params_of(&finish(&f, &down, &mixed).await);
        assert_eq!(params["error"], "access_denied");
        assert!(
            params["error_description"].contains("issuer (iss)"),
            "{iss:?}: {params:?}"
        );
    }

    // A blocked user stays blocked.
    let (down, up) = (browser(), browser());
    let (url, verifier) = authorize(&f, "acme");
    let callback = to_the_callback(&f, &down, &up, &url).await;
    let params = params_of(&finish(&f, &down, &callback).await);
    f.downstream.redeem(&params["code"], &verifier).await;
    let user_id = format!("oidc|acme|{}", f.upstream.user_id);
    let (status, _) = management(
        &f.downstream,
        Method::PATCH,
        &format!("/users/{}", urlencode(&user_id)),
        Some(json!({"blocked": true})),
    )
    .await;
    assert_eq!(status, 200);
    let (down, up) = (browser(), browser());
    let (url, _) = authorize(&f, "acme");
    let callback = to_the_callback(&f, &down, &up, &url).await;
    let params = params_of(&finish(&f, &down, &callback).await);
    assert_eq!(params["error"], "unauthorized");
    assert_eq!(params["error_description"], "user is blocked");

    // Every refusal is a failed login (`f`) at the connection, for the application.
    let failed = crate::audit_log::events_of(&f.downstream, "f").await;
    let reasons: Vec<&str> = failed
        .iter()
        .map(|e| e["description"].as_str().unwrap())
        .collect();
    assert_eq!(failed.len(), 6, "{reasons:#?}");
    assert!(
        failed
            .iter()
            .all(|e| e["connection"] == "acme"
                && e["client_id"] == f.downstream.spa_client_id.as_str()),
        "{failed:#?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("refused the sign-in (access_denied)"))
    );
    assert!(reasons.iter().any(|r| r.contains("token endpoint")));
    assert!(reasons.contains(&"user is blocked"));
    assert!(
        !crate::audit_log::whole_log(&f.downstream)
            .await
            .contains(token_like)
    );
}

#[tokio::test]
async fn a_connection_not_enabled_for_the_application_is_refused() {
    let f = federation().await;
    let down = browser();
    for connection in ["nope", "acme"] {
        if connection == "acme" {
            let (status, _) = management(
                &f.downstream,
                Method::PATCH,
                &format!("/connections/{}/clients", f.connection_id),
                Some(json!([{"client_id": f.downstream.spa_client_id, "status": false}])),
            )
            .await;
            assert_eq!(status, 204);
        }
        let (url, _) = authorize(&f, connection);
        let response = down.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 302);
        let to = location(&response);
        assert!(to.starts_with(CALLBACK), "{connection}: {to}");
        assert_eq!(params_of(&to)["error"], "invalid_request", "{connection}");
    }
    // The database connection by name is the login page.
    let (url, _) = authorize(&f, "Username-Password-Authentication");
    let response = down.get(&url).send().await.unwrap();
    assert!(location(&response).starts_with("/u/login?state="));
}

#[tokio::test]
async fn a_connection_disabled_while_the_browser_is_at_the_provider_signs_nobody_in() {
    let f = federation().await;
    let (down, up) = (browser(), browser());
    let (url, _) = authorize(&f, "acme");
    let callback = to_the_callback(&f, &down, &up, &url).await;
    let (status, _) = management(
        &f.downstream,
        Method::PATCH,
        &format!("/connections/{}/clients", f.connection_id),
        Some(json!([{"client_id": f.downstream.spa_client_id, "status": false}])),
    )
    .await;
    assert_eq!(status, 204);
    let at_app = finish(&f, &down, &callback).await;
    let params = params_of(&at_app);
    assert_eq!(params["error"], "access_denied", "{at_app}");
    assert!(
        params["error_description"].contains("no longer enabled"),
        "{at_app}"
    );
    let user_id = format!("oidc|acme|{}", f.upstream.user_id);
    assert!(
        f.downstream
            .store
            .find_user(&user_id)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn the_login_page_offers_each_enabled_connection_as_a_button() {
    let f = federation().await;
    let (status, _) = management(
        &f.downstream,
        Method::PATCH,
        &format!("/connections/{}", f.connection_id),
        Some(json!({"display_name": "<b>Acme</b> & Co"})),
    )
    .await;
    assert_eq!(status, 200);
    let (down, up) = (browser(), browser());
    let (url, verifier) = authorize(&f, "");
    let url = url.replace("&connection=", "");
    let response = down.get(&url).send().await.unwrap();
    let login = location(&response);
    assert!(login.starts_with("/u/login?state="), "{login}");
    let page = down
        .get(f.downstream.url(&login))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Continue with &#60;b&#62;Acme&#60;/b&#62; &#38; Co"),
        "{page}"
    );
    assert!(!page.contains("<b>Acme"), "markup is escaped");
    let state = params_of(&format!("http://x{login}"))["state"].clone();
    let href = format!("/u/login/upstream?state={state}&amp;connection=acme");
    assert!(page.contains(&href), "{page}");

    // The button goes on at the provider, in the same transaction.
    let response = down
        .get(f.downstream.url(&href.replace("&amp;", "&")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    let at_provider = location(&response);
    assert_eq!(params_of(&at_provider)["state"], state);
    let callback = f.upstream.sign_in(&up, &at_provider).await;
    let params = params_of(&finish(&f, &down, &callback).await);
    let (status, tokens) = f.downstream.redeem(&params["code"], &verifier).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(
        claims_of(tokens["id_token"].as_str().unwrap())["sub"],
        format!("oidc|acme|{}", f.upstream.user_id).as_str()
    );

    // Another browser cannot use the button of this transaction; an unknown connection is
    // refused; a connection not shown as a button is not on the page.
    let (_, _) = authorize(&f, "");
    let response = browser()
        .get(
            f.downstream
                .url(&format!("/u/login/upstream?state={state}&connection=acme")),
        )
        .send()
        .await
        .unwrap();
    assert!(
        response.status() == 400 || response.status() == 403,
        "{}",
        response.status()
    );
    let (status, _) = management(
        &f.downstream,
        Method::PATCH,
        &format!("/connections/{}", f.connection_id),
        Some(json!({"show_as_button": false})),
    )
    .await;
    assert_eq!(status, 200);
    let down = browser();
    let response = down.get(&url).send().await.unwrap();
    let login = location(&response);
    let page = down
        .get(f.downstream.url(&login))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("Continue with"), "{page}");
    let state = params_of(&format!("http://x{login}"))["state"].clone();
    let response = down
        .get(
            f.downstream
                .url(&format!("/u/login/upstream?state={state}&connection=nope")),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn actions_see_the_connection_the_user_signed_in_with() {
    let f = federation().await;
    crate::actions::bind(
        &f.downstream,
        "post-login",
        "connection-claims",
        "exports.onExecutePostLogin = async (event, api) => {
           api.idToken.setCustomClaim('https://example.com/connection',
             [event.connection.name, event.connection.strategy, event.connection.id,
              event.user.identities[0].provider].join(' '));
         };",
    )
    .await;
    let (_, _, tokens) = browsers_through_acme(&f).await;
    assert_eq!(
        claims_of(tokens["id_token"].as_str().unwrap())["https://example.com/connection"],
        format!("acme oidc {} oidc", f.connection_id).as_str()
    );
}

/// One sign-in through `acme` from a fresh pair of browsers: the downstream one, the
/// provider's, and the downstream tokens.
async fn browsers_through_acme(f: &Federation) -> (reqwest::Client, reqwest::Client, Value) {
    let (down, up) = (browser(), browser());
    let (url, verifier) = authorize(f, "acme");
    let callback = to_the_callback(f, &down, &up, &url).await;
    let params = params_of(&finish(f, &down, &callback).await);
    let (status, tokens) = f.downstream.redeem(&params["code"], &verifier).await;
    assert_eq!(status, 200, "{tokens}");
    (down, up, tokens)
}

/// One sign-in through `acme` from a fresh browser; the `sub` of the ID token and the token.
async fn sign_in_through_acme(f: &Federation) -> (String, String) {
    let (_, _, tokens) = browsers_through_acme(f).await;
    let id_token = tokens["id_token"].as_str().unwrap().to_string();
    let sub = claims_of(&id_token)["sub"].as_str().unwrap().to_string();
    (sub, id_token)
}

#[tokio::test]
async fn an_identity_the_administrator_links_signs_its_primary_in() {
    // The downstream password account demo@example.com is the primary; the provider's
    // demo@example.com is another account until an administrator links it — by its
    // provider and id, or by an ID token proving it (`link_with`).
    let f = federation().await;
    let primary = f.downstream.user_id.clone();
    let (federated, id_token) = sign_in_through_acme(&f).await;
    let acme_id = federated.strip_prefix("oidc|").unwrap().to_string();
    assert_ne!(federated, primary, "no linking by email");

    let linked = json!({"provider": "oidc", "user_id": acme_id});
    let path = format!("/users/{}/identities", urlencode(&primary));
    let (status, identities) = management(&f.downstream, Method::POST, &path, Some(linked)).await;
    assert_eq!(status, 201, "{identities}");
    assert_eq!(identities.as_array().unwrap().len(), 2, "{identities}");
    assert_eq!(identities[0]["provider"], "auth0");
    assert_eq!(identities[1]["provider"], "oidc");
    assert_eq!(identities[1]["connection"], "acme");
    assert_eq!(identities[1]["user_id"], acme_id.as_str());
    assert_eq!(
        identities[1]["profileData"]["email"],
        f.upstream.user_email.as_str()
    );
    let (status, _) = management(
        &f.downstream,
        Method::GET,
        &format!("/users/{}", urlencode(&federated)),
        None,
    )
    .await;
    assert_eq!(status, 404, "the secondary account is gone");
    let (_, shown) = management(
        &f.downstream,
        Method::GET,
        &format!("/users/{}", urlencode(&primary)),
        None,
    )
    .await;
    assert_eq!(shown["identities"], identities);

    // Signing in through the linked identity signs the primary in.
    let (sub, _) = sign_in_through_acme(&f).await;
    assert_eq!(sub, primary);
    let stored = f
        .downstream
        .store
        .find_user(&primary)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.logins_count, 1);

    // Unlinked, it is an account of its own again.
    let unlink = format!(
        "/users/{}/identities/oidc/{}",
        urlencode(&primary),
        urlencode(&acme_id)
    );
    let (status, left) = management(&f.downstream, Method::DELETE, &unlink, None).await;
    assert_eq!(status, 200, "{left}");
    assert_eq!(left.as_array().unwrap().len(), 1, "{left}");
    let (sub, fresh_token) = sign_in_through_acme(&f).await;
    assert_eq!(sub, federated);

    // `link_with`: an unexpired ID token of ours proves the account to link.
    let (status, refused) = management(
        &f.downstream,
        Method::POST,
        &path,
        Some(json!({"link_with": id_token.replace('.', "x")})),
    )
    .await;
    assert_eq!(status, 400, "{refused}");
    let (status, identities) = management(
        &f.downstream,
        Method::POST,
        &path,
        Some(json!({"link_with": fresh_token})),
    )
    .await;
    assert_eq!(status, 201, "{identities}");
    assert_eq!(identities[1]["user_id"], acme_id.as_str());
    let (sub, _) = sign_in_through_acme(&f).await;
    assert_eq!(sub, primary);
}

#[tokio::test]
async fn an_address_of_a_domain_the_connection_aliases_signs_in_at_its_provider() {
    let f = federation().await;
    let path = format!("/connections/{}", f.connection_id);
    let (_, current) = management(&f.downstream, Method::GET, &path, None).await;
    let mut options = current["options"].clone();
    options["domain_aliases"] = json!(["acme.example"]);
    let (status, body) = management(
        &f.downstream,
        Method::PATCH,
        &path,
        Some(json!({"options": options})),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let (down, up) = (browser(), browser());
    let (url, verifier) = authorize(&f, "");
    let url = url.replace("&connection=", "");
    let login = location(&down.get(&url).send().await.unwrap());
    let page = down
        .get(f.downstream.url(&login))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let form = |username: &str| {
        vec![
            ("state", tessera_testkit::hidden_field(&page, "state")),
            ("csrf", tessera_testkit::hidden_field(&page, "csrf")),
            ("username", username.to_string()),
            ("password", "not read".to_string()),
        ]
    };
    // Another domain: the password is checked as ever.
    let response = down
        .post(f.downstream.url("/u/login"))
        .form(&form("someone@elsewhere.example"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    // The aliased domain (any case): a page that goes on to the provider, this transaction.
    let response = down
        .post(f.downstream.url("/u/login"))
        .form(&form("Jo@ACME.example"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let at_provider = meta_refresh_target(&response.text().await.unwrap());
    assert!(
        at_provider.starts_with(&format!("{}/authorize?", f.upstream.base)),
        "{at_provider}"
    );
    let state = params_of(&format!("http://x{login}"))["state"].clone();
    assert_eq!(
        params_of(&at_provider).get("state"),
        Some(&state),
        "{at_provider}"
    );
    let callback = f.upstream.sign_in(&up, &at_provider).await;
    let params = params_of(&finish(&f, &down, &callback).await);
    let (status, tokens) = f.downstream.redeem(&params["code"], &verifier).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(
        claims_of(tokens["id_token"].as_str().unwrap())["sub"],
        format!("oidc|acme|{}", f.upstream.user_id).as_str()
    );
}

#[tokio::test]
async fn post_login_sees_the_connection_a_linked_identity_signed_in_with() {
    // A post-login action copies `event.connection` into the tokens. The password account
    // signs in with the database connection; its linked `acme` identity signs the same
    // user in, and the action sees `acme`, at the login and at every refresh after it.
    let f = federation().await;
    crate::actions::bind(
        &f.downstream,
        "post-login",
        "connection-claim",
        "exports.onExecutePostLogin = async (event, api) => {\n\
         const seen = `${event.connection.name}/${event.connection.strategy}`;\n\
         api.idToken.setCustomClaim('https://example.com/connection', seen);\n\
         api.accessToken.setCustomClaim('https://example.com/connection', seen);\n\
         };",
    )
    .await;
    let claim = |token: &str| claims_of(token)["https://example.com/connection"].clone();
    let primary = f.downstream.user_id.clone();
    let (federated, _) = sign_in_through_acme(&f).await;
    let acme_id = federated.strip_prefix("oidc|").unwrap().to_string();
    let path = format!("/users/{}/identities", urlencode(&primary));
    let linked = json!({"provider": "oidc", "user_id": acme_id});
    let (status, body) = management(&f.downstream, Method::POST, &path, Some(linked)).await;
    assert_eq!(status, 201, "{body}");

    let (down, up) = (browser(), browser());
    let pkce = pkce();
    let url = f.downstream.authorize_url(&[
        ("response_type", "code"),
        ("scope", "openid profile offline_access"),
        ("audience", tessera_testkit::API),
        ("state", "app-state"),
        ("nonce", "app-nonce"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("connection", "acme"),
    ]);
    let callback = to_the_callback(&f, &down, &up, &url).await;
    let params = params_of(&finish(&f, &down, &callback).await);
    let (status, tokens) = f.downstream.redeem(&params["code"], &pkce.verifier).await;
    assert_eq!(status, 200, "{tokens}");
    let id_token = tokens["id_token"].as_str().unwrap();
    assert_eq!(claims_of(id_token)["sub"], primary.as_str());
    assert_eq!(claim(id_token), "acme/oidc");
    let (status, refreshed) = f
        .downstream
        .refresh(tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(
        claim(refreshed["access_token"].as_str().unwrap()),
        "acme/oidc"
    );

    // The same user with the password: the database connection.
    let tokens = f
        .downstream
        .code_flow(&browser(), "openid profile", None)
        .await;
    let id_token = tokens["id_token"].as_str().unwrap();
    assert_eq!(claims_of(id_token)["sub"], primary.as_str());
    assert_eq!(
        claim(id_token),
        format!("{}/auth0", tessera_core::DATABASE_CONNECTION)
    );
}

/// Logout tokens a receiver on loopback was posted (the form bodies, as sent).
async fn logout_receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = seen.clone();
    let app = axum::Router::new().route(
        "/bc",
        axum::routing::post(move |body: String| {
            let kept = kept.clone();
            async move {
                kept.lock().unwrap().push(body);
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/bc", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

/// Sets an application's back-channel logout URL (the default initiators).
async fn tell_on_logout(server: &TestServer, client_id: &str, url: &str) {
    let (status, body) = management(
        server,
        Method::PATCH,
        &format!("/clients/{client_id}"),
        Some(json!({"oidc_logout": {"backchannel_logout_urls": [url]}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn the_providers_logout_ends_the_sessions_signed_in_through_it() {
    // The provider (a second Tessera) posts logout tokens to the downstream connection's
    // URL; the downstream SPA is told in turn (`idp-logout`).
    let f = federation().await;
    let acme_url = format!("{}login/backchannel-logout/acme", f.downstream.issuer);
    tell_on_logout(&f.upstream, &f.app_id, &acme_url).await;
    let (spa_url, told) = logout_receiver().await;
    tell_on_logout(&f.downstream, &f.downstream.spa_client_id, &spa_url).await;
    // Two browsers sign in through acme (two sessions at the provider); a third with a
    // password downstream.
    let mut through_acme = Vec::new();
    for _ in 0..2 {
        let (down, up, tokens) = browsers_through_acme(&f).await;
        let sid = claims_of(tokens["id_token"].as_str().unwrap())["sid"]
            .as_str()
            .unwrap()
            .to_string();
        through_acme.push((down, up, sid));
    }
    let password = browser();
    f.downstream
        .authorization_code(&password, "openid", None)
        .await;
    for down in through_acme
        .iter()
        .map(|(down, _, _)| down)
        .chain([&password])
    {
        assert!(f.downstream.signs_in_silently(down).await);
    }
    // The first browser signs out at the provider.
    let (first_down, first_up, first_sid) = &through_acme[0];
    let response = first_up
        .get(f.upstream.url("/v2/logout"))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_redirection() || response.status().is_success());
    assert!(f.upstream.logout_notices_settled().await);
    let mut ended = false;
    for _ in 0..100 {
        if !f.downstream.signs_in_silently(first_down).await {
            ended = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(ended, "the downstream session outlived the provider's");
    // Only that provider session's: the other browser and the password one stay in.
    assert!(f.downstream.signs_in_silently(&through_acme[1].0).await);
    assert!(f.downstream.signs_in_silently(&password).await);
    // The SPA hears of it, for the session that ended.
    assert!(f.downstream.logout_notices_settled().await);
    let told = told.lock().unwrap().clone();
    assert_eq!(told.len(), 1, "{told:?}");
    let form: std::collections::HashMap<String, String> =
        form_urlencoded::parse(told[0].as_bytes())
            .into_owned()
            .collect();
    let logout = claims_of(&form["logout_token"]);
    assert_eq!(logout["sid"], json!(first_sid), "{logout}");
    assert!(logout["events"].is_object(), "{logout}");
}

#[tokio::test]
async fn a_federated_logout_ends_the_providers_session_too() {
    // Auth0's `/v2/logout?federated`: Tessera's session ends, then the browser goes to the
    // provider's end-session endpoint (a second Tessera's `/oidc/logout`), which sends it on
    // to the return URL both know.
    let f = federation().await;
    let bye = "https://app.example/bye";
    for (server, client_id) in [
        (&f.upstream, f.app_id.as_str()),
        (&f.downstream, f.downstream.spa_client_id.as_str()),
    ] {
        let (status, body) = management(
            server,
            Method::PATCH,
            &format!("/clients/{client_id}"),
            Some(json!({"allowed_logout_urls": [bye]})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let signed_in = || async {
        let (down, up, _) = browsers_through_acme(&f).await;
        assert!(f.downstream.signs_in_silently(&down).await);
        assert!(f.upstream.signs_in_silently(&up).await);
        (down, up)
    };
    let logout = |federated: bool| {
        let mut url = format!(
            "/v2/logout?client_id={}&returnTo={}",
            f.downstream.spa_client_id,
            urlencode(bye)
        );
        if federated {
            url.push_str("&federated");
        }
        f.downstream.url(&url)
    };

    // Without `federated`: back to the application, the provider's session untouched.
    let (down, up) = signed_in().await;
    let response = down.get(logout(false)).send().await.unwrap();
    assert_eq!(location(&response), bye);
    assert!(!f.downstream.signs_in_silently(&down).await);
    assert!(f.upstream.signs_in_silently(&up).await);

    // With it: through the provider's end-session endpoint, which ends its session too.
    let (down, up) = signed_in().await;
    let response = down.get(logout(true)).send().await.unwrap();
    let at_provider = location(&response);
    let expected = format!(
        "{}oidc/logout?client_id={}&post_logout_redirect_uri={}",
        f.upstream.issuer,
        f.app_id,
        urlencode(bye)
    );
    assert_eq!(at_provider, expected);
    assert!(!f.downstream.signs_in_silently(&down).await);
    let response = up.get(&at_provider).send().await.unwrap();
    assert_eq!(location(&response), bye);
    assert!(!f.upstream.signs_in_silently(&up).await);

    // A browser signed in with a password here has no provider to go through.
    let password = browser();
    f.downstream
        .authorization_code(&password, "openid", None)
        .await;
    let response = password.get(logout(true)).send().await.unwrap();
    assert_eq!(location(&response), bye);
}
