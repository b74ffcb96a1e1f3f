//! Actions and Rules inside the flows, attacked: hostile code during a sign-in (endless
//! loops, promises that never settle, memory bombs, `require`, reaching for the host), an
//! action forging the claims Tessera decides (`sub`, `aud`, `scope`, `permissions`, the
//! issuer's and Auth0's namespaces, 200 kB of claims), and users' input an action reads
//! (`__proto__` metadata, quotes, another action's secrets) — each refused or inert, the sign-in
//! failing closed with nothing issued, and the server serving the next sign-in.

use reqwest::Method;
use serde_json::{Value, json};
use tessera_testkit::*;

use crate::harness::Tally;

const SCOPES: &[&str] = &[
    "read:actions",
    "create:actions",
    "update:actions",
    "create:rules",
    "update:users",
    "update:guardian_factors",
];

async fn call(server: &TestServer, token: &str, method: Method, path: &str, body: Value) -> Value {
    server.management_call(token, method, path, body).await
}

/// Deploys `code` as the action `name` and makes it post-login's only action.
async fn bind_post_login(server: &TestServer, token: &str, name: &str, code: &str) {
    let own = format!("secret of {name}");
    let id = server
        .deploy_action(token, ("post-login", name), code, &[("OWN", &own)])
        .await;
    server.bind_actions(token, "post-login", &[id]).await;
}

async fn unbind_all(server: &TestServer, token: &str) {
    call(
        server,
        token,
        Method::PATCH,
        "/actions/triggers/post-login/bindings",
        json!({"bindings": []}),
    )
    .await;
}

/// A fresh browser's sign-in for an access token to the quickstart API: the parameters
/// the application's callback received.
async fn sign_in(server: &TestServer) -> std::collections::HashMap<String, String> {
    let pkce = pkce();
    let url = server.authorize_url(&[
        ("response_type", "code"),
        ("scope", "openid read:messages"),
        ("audience", API),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]);
    params_of(&server.sign_in(&browser(), &url).await)
}

/// The access token of a full sign-in, verified, or the error the application got.
async fn access_claims(server: &TestServer) -> Result<Value, String> {
    let pkce = pkce();
    let url = server.authorize_url(&[
        ("response_type", "code"),
        ("scope", "openid read:messages"),
        ("audience", API),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]);
    let params = params_of(&server.sign_in(&browser(), &url).await);
    let Some(code) = params.get("code") else {
        return Err(format!("{params:?}"));
    };
    let (status, body) = server.redeem(code, &pkce.verifier).await;
    if status != 200 {
        return Err(body.to_string());
    }
    Ok(server
        .verify(body["access_token"].as_str().unwrap(), API)
        .await)
}

#[tokio::test]
async fn hostile_code_fails_the_sign_in_closed_and_the_server_serves_on() {
    let server = spawn().await;
    let token = server.management_token(SCOPES).await;
    let mut tally = Tally::new("actions_flows/hostile_code");
    let attacks = [
        ("an endless loop", "while (true) {}"),
        (
            "a promise that never settles",
            "await new Promise(() => {});",
        ),
        (
            "a memory bomb",
            "const hoard = []; while (true) hoard.push('x'.repeat(1 << 20));",
        ),
        (
            "require('child_process')",
            "require('child_process').execSync('id');",
        ),
        ("the host's process object", "process.exit(1);"),
        (
            "Function's constructor to reach the host",
            "const g = (function () {}).constructor('return this')(); g.process.exit(1);",
        ),
        (
            "a deny with a 100 kB message",
            "api.access.deny('x'.repeat(100000));",
        ),
    ];
    for (index, (attack, body)) in attacks.into_iter().enumerate() {
        let code = format!("exports.onExecutePostLogin = async (event, api) => {{ {body} }};");
        bind_post_login(&server, &token, &format!("hostile {index}"), &code).await;
        let params = sign_in(&server).await;
        tally.case(
            format!("{attack}: the application gets access_denied and no code"),
            params.get("error").map(String::as_str) == Some("access_denied")
                && !params.contains_key("code"),
            format_args!("{params:?}"),
        );
        let description = params.get("error_description").cloned().unwrap_or_default();
        tally.case(
            format!("{attack}: the description stays short"),
            description.len() <= 1024,
            format_args!("{} bytes", description.len()),
        );
    }
    unbind_all(&server, &token).await;
    let after = access_claims(&server).await;
    tally.case(
        "after every attack, a sign-in without actions issues a token",
        after.is_ok(),
        format_args!("{after:?}"),
    );
    tally.finish();
}

#[tokio::test]
async fn a_second_factor_an_action_asks_for_is_not_skipped() {
    let server = spawn().await;
    let token = server.management_token(SCOPES).await;
    let mut tally = Tally::new("actions_flows/multifactor");
    call(
        &server,
        &token,
        Method::PUT,
        "/guardian/factors/otp",
        json!({"enabled": true}),
    )
    .await;
    bind_post_login(
        &server,
        &token,
        "mfa",
        "exports.onExecutePostLogin = async (event, api) => { api.multifactor.enable('any'); };",
    )
    .await;
    let url = |prompt: Option<&str>| {
        let pkce = pkce();
        let mut params = vec![
            ("response_type", "code"),
            ("scope", "openid"),
            ("code_challenge", pkce.challenge.as_str()),
            ("code_challenge_method", "S256"),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.to_string()))
        .collect::<Vec<_>>();
        if let Some(prompt) = prompt {
            params.push(("prompt", prompt.to_string()));
        }
        let borrowed: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        server.authorize_url(&borrowed)
    };
    let browser = browser();
    let asked = server.sign_in(&browser, &url(None)).await;
    tally.case(
        "the password alone leads to the second factor, not the application",
        asked.starts_with("/u/mfa?state="),
        &asked,
    );
    let state = asked.trim_start_matches("/u/mfa?state=").to_string();
    let resumed = browser
        .get(server.url(&format!("/authorize/resume?state={state}")))
        .send()
        .await
        .unwrap();
    let to = location(&resumed);
    tally.case(
        "resuming the waiting request without the second factor asks for it again",
        to.starts_with("/u/mfa?state=") && !to.contains("code="),
        &to,
    );
    let again = server.sign_in(&browser, &url(None)).await;
    tally.case(
        "a new request from the password-only session asks for it again",
        again.starts_with("/u/mfa?state="),
        &again,
    );
    let silent = params_of(&server.sign_in(&browser, &url(Some("none"))).await);
    tally.case(
        "prompt=none from the password-only session: interaction_required, no code",
        silent.get("error").map(String::as_str) == Some("interaction_required")
            && !silent.contains_key("code"),
        format_args!("{silent:?}"),
    );

    // Odd arguments fail the action, which refuses the login (never lets it through).
    for (index, (case, call_text)) in [
        (
            "an object for the provider",
            "api.multifactor.enable({provider: 'any'})",
        ),
        (
            "a provider of another case",
            "api.multifactor.enable('ANY')",
        ),
        (
            "a 100 kB provider",
            "api.multifactor.enable('x'.repeat(100000))",
        ),
        (
            "Duo, which Tessera does not offer",
            "api.multifactor.enable('duo')",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let code =
            format!("exports.onExecutePostLogin = async (event, api) => {{ {call_text}; }};");
        bind_post_login(&server, &token, &format!("mfa arguments {index}"), &code).await;
        let params = params_of(
            &server
                .sign_in(&tessera_testkit::browser(), &url(None))
                .await,
        );
        tally.case(
            format!("{case}: access_denied and no code"),
            params.get("error").map(String::as_str) == Some("access_denied")
                && !params.contains_key("code"),
            format_args!("{params:?}"),
        );
    }
    tally.finish();
}

#[tokio::test]
async fn an_action_cannot_forge_what_tessera_decides() {
    let server = spawn().await;
    let token = server.management_token(SCOPES).await;
    let host = url::Url::parse(&server.issuer)
        .unwrap()
        .host_str()
        .unwrap()
        .to_string();
    let forged = [
        ("sub", json!("auth0|someone-else")),
        ("aud", json!("https://other.example/api")),
        ("iss", json!("https://evil.example/")),
        ("exp", json!(4_102_444_800_i64)),
        (
            "scope",
            json!("read:messages write:messages delete:everything"),
        ),
        ("permissions", json!(["write:messages"])),
        ("azp", json!("another-client")),
        ("gty", json!("client-credentials")),
        ("org_id", json!("org_attacker")),
        (&*format!("https://{host}/role"), json!("admin")),
        ("https://auth0.com/role", json!("admin")),
        ("https://tenant.auth0.com/role", json!("admin")),
        ("urn:auth0:role", json!("admin")),
    ]
    .map(|(name, value)| (name.to_string(), value));
    let mut code = String::from("exports.onExecutePostLogin = async (event, api) => {\n");
    for (name, value) in &forged {
        code.push_str(&format!(
            "  api.accessToken.setCustomClaim({}, {value});\n",
            json!(name)
        ));
    }
    code.push_str(
        "  api.accessToken.setCustomClaim('https://example.com/big', 'x'.repeat(200000));\n",
    );
    code.push_str("  api.accessToken.setCustomClaim('https://example.com/kept', 'yes');\n};");
    bind_post_login(&server, &token, "forger", &code).await;

    let mut tally = Tally::new("actions_flows/forged_claims");
    let claims = access_claims(&server).await.expect("the sign-in completes");
    for (name, value) in &forged {
        tally.case(
            format!("setCustomClaim({name}) does not reach the token"),
            claims.get(name.as_str()) != Some(value),
            format_args!("{name} = {}", claims[name.as_str()]),
        );
    }
    tally.case(
        "the token's subject is the user who signed in",
        claims["sub"] == json!(server.user_id),
        &claims["sub"],
    );
    tally.case(
        "a 200 kB claim is dropped, not signed",
        claims.get("https://example.com/big").is_none(),
        "the claim was kept",
    );
    tally.case(
        "the action's legitimate claim is kept beside the refused ones",
        claims["https://example.com/kept"] == "yes",
        &claims,
    );

    // A Rule writing into the access token's reserved names is filtered alike.
    unbind_all(&server, &token).await;
    call(
        &server,
        &token,
        Method::POST,
        "/rules",
        json!({
            "name": "forging rule",
            "script": "function (user, context, callback) {\n  context.accessToken.sub = 'auth0|someone-else';\n  context.accessToken.permissions = ['delete:everything'];\n  callback(null, user, context);\n}",
        }),
    )
    .await;
    let claims = access_claims(&server).await.expect("the sign-in completes");
    tally.case(
        "a Rule's context.accessToken.sub is dropped",
        claims["sub"] == json!(server.user_id),
        &claims["sub"],
    );
    tally.case(
        "a Rule's context.accessToken.permissions is dropped",
        !claims.to_string().contains("delete:everything"),
        &claims,
    );
    tally.finish();
}

#[tokio::test]
async fn what_users_and_clients_send_stays_data() {
    let server = spawn().await;
    let token = server.management_token(SCOPES).await;
    let mut tally = Tally::new("actions_flows/event");

    // A user's metadata built to pollute prototypes or break out of a string.
    call(
        &server,
        &token,
        Method::PATCH,
        &format!("/users/{}", urlencode(&server.user_id)),
        json!({
            "user_metadata": {
                "__proto__": {"polluted": true},
                "constructor": {"prototype": {"polluted": true}},
                "quote": "'); throw new Error('escaped'); ('",
            }
        }),
    )
    .await;
    // A second action's secret must stay out of this one's reach.
    let code = "exports.onExecutePostLogin = async (event, api) => {\n\
  api.accessToken.setCustomClaim('https://example.com/polluted', ({}).polluted === true || Object.prototype.polluted === true);\n\
  api.accessToken.setCustomClaim('https://example.com/quote', String(event.user.user_metadata.quote));\n\
  api.accessToken.setCustomClaim('https://example.com/own', event.secrets.OWN);\n\
};";
    bind_post_login(&server, &token, "reader", code).await;
    let claims = access_claims(&server).await;
    let claims = match claims {
        Ok(claims) => claims,
        Err(error) => panic!("the sign-in failed: {error}"),
    };
    tally.case(
        "__proto__ and constructor in metadata pollute no prototype",
        claims["https://example.com/polluted"] == false,
        &claims["https://example.com/polluted"],
    );
    tally.case(
        "a quote in metadata is a string, not code",
        claims["https://example.com/quote"] == "'); throw new Error('escaped'); ('",
        &claims["https://example.com/quote"],
    );
    tally.case(
        "an action sees its own secrets",
        claims["https://example.com/own"] == "secret of reader",
        &claims["https://example.com/own"],
    );

    // Another action's secrets stay with it.
    let other = "exports.onExecutePostLogin = async (event, api) => {\n\
  api.accessToken.setCustomClaim('https://example.com/own', event.secrets.OWN);\n\
  api.accessToken.setCustomClaim('https://example.com/all', JSON.stringify(event.secrets));\n\
};";
    bind_post_login(&server, &token, "neighbour", other).await;
    let claims = access_claims(&server).await.expect("the sign-in completes");
    let all = claims["https://example.com/all"].as_str().unwrap_or("");
    tally.case(
        "an action never sees another action's secret",
        !all.contains("secret of reader")
            && claims["https://example.com/own"] == "secret of neighbour",
        all,
    );

    // The user's second factors reach the event as their kinds alone: no seed, no id.
    let user = server.user_id.as_str();
    let sealed = b"sealed-seed-never-shown";
    server
        .store
        .begin_totp_enrollment(user, "totp|dev_hidden_id", sealed, now())
        .await
        .unwrap();
    let recovery = (
        "recovery-code|dev_hidden_rc",
        &b"recovery-hash-never-shown"[..],
    );
    server
        .store
        .confirm_totp(user, "totp|dev_hidden_id", 1, recovery, now())
        .await
        .unwrap();
    let dump = "exports.onExecutePostLogin = async (event, api) => {\n\
  api.accessToken.setCustomClaim('https://example.com/user', JSON.stringify(event.user));\n\
};";
    bind_post_login(&server, &token, "dumper", dump).await;
    let claims = access_claims(&server).await.expect("the sign-in completes");
    let dumped = claims["https://example.com/user"].as_str().unwrap_or("");
    tally.case(
        "event.user.enrolledFactors names the kinds, never a seed, a hash or an id",
        dumped.contains(r#"{"type":"otp"}"#)
            && !["sealed-seed", "recovery-hash", "dev_hidden"]
                .iter()
                .any(|secret| dumped.contains(secret)),
        dumped,
    );
    tally.finish();
}

#[tokio::test]
async fn what_an_application_sends_to_authorize_stays_data_and_bounded() {
    // `event.request.query` carries the application's own /authorize parameters, as on
    // Auth0: credentials never, at most 64 of them, none longer than 2 KB, and names made
    // to pollute prototypes are data.
    let server = spawn().await;
    let token = server.management_token(SCOPES).await;
    let mut tally = Tally::new("actions_flows/authorize_parameters");
    let code = "exports.onExecutePostLogin = async (event, api) => {\n\
  api.accessToken.setCustomClaim('https://example.com/query', JSON.stringify(event.request.query));\n\
  api.accessToken.setCustomClaim('https://example.com/polluted', ({}).polluted !== undefined || Object.prototype.polluted !== undefined);\n\
};";
    bind_post_login(&server, &token, "query reader", code).await;
    let pkce = pkce();
    let many: Vec<(String, String)> = (0..100)
        .map(|n| (format!("p{n:03}"), n.to_string()))
        .collect();
    let long = "x".repeat(3000);
    let mut params: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("scope", "openid read:messages"),
        ("audience", API),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("__proto__", "polluted"),
        ("constructor", "polluted"),
        ("password", "hunter2-never-shown"),
        ("client_secret", "secret-never-shown"),
        ("code_verifier", "verifier-never-shown"),
        ("long", long.as_str()),
    ];
    params.extend(
        many.iter()
            .map(|(name, value)| (name.as_str(), value.as_str())),
    );
    let back = server
        .sign_in(&browser(), &server.authorize_url(&params))
        .await;
    let code = params_of(&back).get("code").cloned().unwrap_or_default();
    let (status, tokens) = server.redeem(&code, &pkce.verifier).await;
    let claims = server
        .verify(tokens["access_token"].as_str().unwrap_or_default(), API)
        .await;
    let query: Value = claims["https://example.com/query"]
        .as_str()
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or(Value::Null);
    let shown = query.to_string();
    let members = query.as_object().map_or(0, |members| members.len());
    tally.case(
        "the sign-in is served with the application's parameters",
        status == 200 && query["code_challenge_method"] == "S256" && query["p000"] == "0",
        format_args!("{status} {shown:.200}"),
    );
    tally.case(
        "credentials sent as parameters never reach the action",
        !["hunter2", "secret-never-shown", "verifier-never-shown"]
            .iter()
            .any(|secret| shown.contains(secret)),
        format_args!("{shown:.300}"),
    );
    tally.case(
        "a 3 KB parameter is left out",
        query.get("long").is_none(),
        format_args!("{members} members"),
    );
    tally.case(
        "a hundred parameters are cut to what the login keeps (64, and those Tessera read)",
        members <= 64 + 9 && query.get("p099").is_none(),
        format_args!("{members} members"),
    );
    tally.case(
        "__proto__ and constructor as parameter names pollute no prototype",
        claims["https://example.com/polluted"] == false,
        &claims["https://example.com/polluted"],
    );
    tally.finish();
}

/// An action's context is kept between its executions (as Auth0 keeps a module loaded):
/// what one action leaves there — another's secrets, a user's email, a polluted prototype
/// — never reaches another action, and an action that keeps growing its module scope fails
/// closed at worst, with the server serving the next sign-in.
#[tokio::test]
async fn what_an_action_keeps_stays_its_own() {
    let server = spawn_with(|config| {
        config.login_attempts_per_minute = 1000;
        config.max_login_failures = 1000;
    })
    .await;
    let token = server.management_token(SCOPES).await;
    let mut tally = Tally::new("actions_flows/kept");

    let stasher = "const seen = [];\n\
exports.onExecutePostLogin = async (event, api) => {\n\
  seen.push(event.user.email);\n\
  globalThis.stash = { secrets: event.secrets, seen };\n\
  Object.prototype.stashed = event.secrets.OWN;\n\
  api.accessToken.setCustomClaim('https://example.com/seen', seen.length);\n\
};";
    bind_post_login(&server, &token, "stasher", stasher).await;
    let mut kept = Vec::new();
    for _ in 0..4 {
        let claims = access_claims(&server).await.expect("the sign-in completes");
        kept.push(claims["https://example.com/seen"].as_i64().unwrap_or(0));
    }
    // Two workers: each keeps its own copy, so the count climbs on at least one.
    tally.case(
        "an action's module scope lasts between its own executions",
        kept.iter().any(|&seen| seen > 1),
        format!("{kept:?}"),
    );
    let snooper = "exports.onExecutePostLogin = async (event, api) => {\n\
  api.accessToken.setCustomClaim('https://example.com/found', [typeof globalThis.stash, typeof ({}).stashed, typeof Object.prototype.stashed]);\n\
};";
    bind_post_login(&server, &token, "snooper", snooper).await;
    for round in 0..3 {
        let claims = access_claims(&server).await.expect("the sign-in completes");
        tally.case(
            format!("another action finds nothing the first one kept (sign-in {round})"),
            claims["https://example.com/found"] == json!(["undefined", "undefined", "undefined"]),
            &claims["https://example.com/found"],
        );
    }

    // 2 MiB more in module scope at every execution: the 32 MiB heap runs out.
    let hoarder = "const hoard = [];\n\
exports.onExecutePostLogin = async (event, api) => {\n\
  hoard.push('x'.repeat(2 * 1024 * 1024 + hoard.length));\n\
  api.accessToken.setCustomClaim('https://example.com/hoard', hoard.length);\n\
};";
    bind_post_login(&server, &token, "hoarder", hoarder).await;
    let mut outcomes = Vec::new();
    for _ in 0..40 {
        outcomes.push(match access_claims(&server).await {
            Ok(claims) => format!("issued {}", claims["https://example.com/hoard"]),
            Err(error) => error,
        });
    }
    let refused: Vec<&String> = outcomes
        .iter()
        .filter(|o| !o.starts_with("issued"))
        .collect();
    tally.case(
        "a hoarding action fails closed (access_denied, nothing issued) when the heap runs out",
        !refused.is_empty() && refused.iter().all(|o| o.contains("access_denied")),
        format!("{outcomes:?}"),
    );
    let first_refusal = outcomes.iter().position(|o| !o.starts_with("issued"));
    tally.case(
        "the heap is rebuilt: a later sign-in through the same action is issued again",
        first_refusal.is_some_and(|at| outcomes[at..].iter().any(|o| o.starts_with("issued"))),
        format!("{outcomes:?}"),
    );
    unbind_all(&server, &token).await;
    tally.case(
        "the server serves a plain sign-in after it",
        sign_in(&server).await.contains_key("code"),
        "",
    );
    tally.finish();
}

/// A sign-in for a refresh token of the quickstart API: its token response.
async fn refreshable(server: &TestServer) -> Value {
    server
        .code_flow(&browser(), "openid offline_access read:messages", Some(API))
        .await
}

#[tokio::test]
async fn refresh_token_revocation_stays_with_the_token_presented() {
    let server = spawn().await;
    let token = server.management_token(SCOPES).await;
    let mut tally = Tally::new("actions_flows/refresh_token_revoke");

    // During a sign-in there is no refresh token to revoke: the action fails, closed.
    bind_post_login(
        &server,
        &token,
        "revoke at sign-in",
        "exports.onExecutePostLogin = async (event, api) => { api.refreshToken.revoke('no token here'); };",
    )
    .await;
    let params = sign_in(&server).await;
    tally.case(
        "revoke during a sign-in: access_denied, no code, the reason not shown",
        params.get("error").map(String::as_str) == Some("access_denied")
            && !params.contains_key("code")
            && params
                .get("error_description")
                .is_some_and(|d| !d.contains("no token here")),
        format_args!("{params:?}"),
    );

    // The action sees the token's facts, never the token: not in event.request, not in
    // event.refresh_token.
    bind_post_login(
        &server,
        &token,
        "peeking",
        "exports.onExecutePostLogin = async (event, api) => {\n  api.accessToken.setCustomClaim('https://x/seen', JSON.stringify([event.request, event.refresh_token || null]));\n};",
    )
    .await;
    let tokens = refreshable(&server).await;
    let presented = tokens["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (status, refreshed) = server.refresh(&presented).await;
    let seen = match refreshed["access_token"].as_str() {
        Some(access) => server.verify(access, API).await["https://x/seen"].clone(),
        None => Value::Null,
    };
    tally.case(
        "a refresh shows the action event.refresh_token but not the token itself",
        status == 200
            && seen.as_str().is_some_and(|text| {
                text.contains("\"rotating\":true") && !text.contains(&presented)
            }),
        format_args!("{status} {seen}"),
    );

    // Revocation with a 100 kB reason, for one of two families of the same user.
    bind_post_login(
        &server,
        &token,
        "revoking",
        "exports.onExecutePostLogin = async (event, api) => {\n  if (event.request.body.revoke === 'yes') api.refreshToken.revoke('r'.repeat(100000));\n};",
    )
    .await;
    let kept = refreshable(&server).await["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let doomed_first = refreshable(&server).await["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (_, rotated) = server.refresh(&doomed_first).await;
    let doomed = rotated["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (status, refused) = server
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", &server.spa_client_id),
            ("refresh_token", &doomed),
            ("revoke", "yes"),
        ])
        .await;
    let description = refused["error_description"].as_str().unwrap_or_default();
    tally.case(
        "a revoking action: 403 access_denied, nothing issued, a short description",
        status == 403
            && refused["error"] == "access_denied"
            && refused.get("access_token").is_none()
            && !description.is_empty()
            && description.len() <= 1024,
        format_args!("{status} {} bytes of description", description.len()),
    );
    for (what, presented) in [
        ("the token presented", &doomed),
        ("the one it was rotated from", &doomed_first),
    ] {
        let (status, body) = server.refresh(presented).await;
        tally.case(
            format!("after the revocation, {what} is refused (invalid_grant)"),
            status == 400 && body["error"] == "invalid_grant" && body.get("access_token").is_none(),
            format_args!("{status} {body}"),
        );
    }
    let (status, body) = server.refresh(&kept).await;
    tally.case(
        "the same user's other family is untouched",
        status == 200 && body["access_token"].is_string(),
        format_args!("{status} {body}"),
    );
    unbind_all(&server, &token).await;
    tally.finish();
}

#[tokio::test]
async fn an_action_cannot_lengthen_a_refresh_tokens_life() {
    let server = spawn().await;
    let token = server.management_token(SCOPES).await;
    let mut tally = Tally::new("actions_flows/refresh_token_ends");
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    };
    let ends_of = |refresh: String| {
        let store = server.store.clone();
        async move {
            store
                .find_refresh_family(&tessera_core::ids::secret_hash(&refresh), now())
                .await
                .ok()
                .flatten()
                .map(|family| family.expires_at)
        }
    };
    let baseline = ends_of(
        refreshable(&server).await["refresh_token"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
    .await;

    bind_post_login(
        &server,
        &token,
        "lengthening",
        "exports.onExecutePostLogin = async (event, api) => {\n  api.refreshToken.setExpiresAt(Date.now() + 100 * 365 * 86400 * 1000);\n  api.refreshToken.setIdleExpiresAt(8.64e15);\n};",
    )
    .await;
    let lengthened = refreshable(&server).await["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let ends = ends_of(lengthened.clone()).await;
    tally.case(
        "a hundred years asked: the family ends when the settings say",
        matches!((baseline, ends), (Some(base), Some(end)) if end <= base + 5),
        format_args!("{ends:?} against {baseline:?}"),
    );
    let live = server
        .store
        .live_refresh_token(&tessera_core::ids::secret_hash(&lengthened), now())
        .await
        .ok()
        .flatten()
        .map(|(_, ends)| ends);
    tally.case(
        "an idle end past the family's asked: the token still goes idle as the settings say",
        matches!((live, baseline), (Some(live), Some(base)) if live <= base),
        format_args!("{live:?}"),
    );

    bind_post_login(
        &server,
        &token,
        "ending",
        "exports.onExecutePostLogin = async (event, api) => { api.refreshToken.setExpiresAt(0); };",
    )
    .await;
    let dead = refreshable(&server).await;
    let (status, body) = server
        .refresh(dead["refresh_token"].as_str().unwrap_or_default())
        .await;
    tally.case(
        "an end at 1970: the sign-in is served, its refresh token never works",
        dead["access_token"].is_string() && status == 400 && body["error"] == "invalid_grant",
        format_args!("{status} {body}"),
    );

    for (index, bad) in ["'next week'", "NaN", "-Infinity", "{valueOf: () => 0}"]
        .into_iter()
        .enumerate()
    {
        let code = format!(
            "exports.onExecutePostLogin = async (event, api) => {{ api.refreshToken.setIdleExpiresAt({bad}); }};"
        );
        bind_post_login(&server, &token, &format!("bad end {index}"), &code).await;
        let params = sign_in(&server).await;
        tally.case(
            format!("setIdleExpiresAt({bad}): the sign-in fails closed"),
            params.get("error").map(String::as_str) == Some("access_denied")
                && !params.contains_key("code"),
            format_args!("{params:?}"),
        );
    }
    unbind_all(&server, &token).await;
    tally.finish();
}

fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[tokio::test]
async fn the_session_an_action_sees_holds_no_cookie_or_secret() {
    // `event.session` (a browser's sign-in) is the Management API's session object: its id
    // is the public `sid`; the browser's cookies, the password and the code never reach an
    // action.
    let server = spawn().await;
    let token = server.management_token(SCOPES).await;
    let mut tally = Tally::new("actions_flows/event_session");
    bind_post_login(
        &server,
        &token,
        "dumping",
        "exports.onExecutePostLogin = async (event, api) => {\n  api.accessToken.setCustomClaim('https://x/event', JSON.stringify(event));\n};",
    )
    .await;
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let client = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let tokens = server.code_flow(&client, "openid", Some(API)).await;
    let access = server
        .verify(tokens["access_token"].as_str().unwrap(), API)
        .await;
    let dumped = access["https://x/event"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let sid = server
        .verify(tokens["id_token"].as_str().unwrap(), &server.spa_client_id)
        .await["sid"]
        .clone();
    let event: Value = serde_json::from_str(&dumped).unwrap_or(Value::Null);
    tally.case(
        "event.session is the browser's session, by its sid",
        event["session"]["id"] == sid && sid.is_string(),
        format_args!("{}", event["session"]),
    );
    let cookies = reqwest::cookie::CookieStore::cookies(&*jar, &server.url("/").parse().unwrap())
        .map(|header| header.to_str().unwrap_or_default().to_string())
        .unwrap_or_default();
    let values: Vec<&str> = cookies
        .split("; ")
        .filter_map(|pair| pair.split_once('=').map(|(_, value)| value))
        .filter(|value| value.len() >= 16)
        .collect();
    tally.case(
        "the browser has its session cookie (the control)",
        !values.is_empty(),
        &cookies,
    );
    for value in values {
        tally.case(
            "no cookie value of the browser's in the event",
            !dumped.contains(value),
            "a cookie value was in the event",
        );
    }
    tally.case(
        "the password is not in the event",
        !dumped.contains(PASSWORD),
        "the password was in the event",
    );
    tally.finish();
}

/// `browser` signed in through the code flow with `offline_access`: the browser, its
/// session's id (the ID token's `sid`) and its refresh token.
async fn signed_in(
    server: &TestServer,
    browser: reqwest::Client,
) -> (reqwest::Client, String, String) {
    let tokens = server
        .code_flow(&browser, "openid offline_access", None)
        .await;
    let sid = server
        .verify(
            tokens["id_token"].as_str().unwrap_or_default(),
            &server.spa_client_id,
        )
        .await["sid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let refresh = tokens["refresh_token"].as_str().unwrap_or_default();
    (browser, sid, refresh.to_string())
}

/// `/authorize` with `prompt=none` in `browser` (its session signs it in, and post-login
/// runs): the application's answer.
async fn silently(
    server: &TestServer,
    browser: &reqwest::Client,
) -> std::collections::HashMap<String, String> {
    let url = server.silent_authorize_url();
    params_of(&location(&browser.get(&url).send().await.unwrap()))
}

#[tokio::test]
async fn an_action_cannot_lengthen_a_session_nor_shorten_another() {
    // `api.session.setExpiresAt` / `setIdleExpiresAt` only ever shorten the session of the
    // sign-in they run in: a hundred years asked leaves the settings' ends, hostile
    // arguments fail the sign-in closed with the session as it was, and a refresh — no
    // session — shortens none.
    let server = spawn().await;
    let token = server.management_token(SCOPES).await;
    let mut tally = Tally::new("actions_flows/session_lifetimes");
    let ends_of = |sid: String| {
        let store = server.store.clone();
        async move {
            store
                .find_session_by_sid(&sid, (now(), 0))
                .await
                .ok()
                .flatten()
                .map(|details| (details.session.expires_at, details.session.ends_by))
        }
    };
    let (bystander, bystander_sid, _) = signed_in(&server, browser()).await;
    let bystander_ends = ends_of(bystander_sid.clone()).await;

    let (victim, sid, _) = signed_in(&server, browser()).await;
    bind_post_login(
        &server,
        &token,
        "lengthening",
        "exports.onExecutePostLogin = async (event, api) => {\n  api.session.setExpiresAt(Date.now() + 100 * 365 * 86400 * 1000);\n  api.session.setIdleExpiresAt(8.64e15);\n};",
    )
    .await;
    let before = ends_of(sid.clone()).await;
    let answer = silently(&server, &victim).await;
    unbind_all(&server, &token).await;
    let after = ends_of(sid.clone()).await;
    let admin = server.management_token(&["read:sessions"]).await;
    let (_, shown) = server
        .management_request(&admin, "GET", &format!("/sessions/{sid}"))
        .await;
    tally.case(
        "a hundred years asked: the session still ends when the settings say",
        answer.contains_key("code")
            && matches!((before, after), (Some((b, _)), Some((a, _))) if a <= b + 120)
            && shown["expires_at"]
                .as_str()
                .is_some_and(|at| at.starts_with(&this_year())),
        format_args!("{before:?} → {after:?}, shown {}", shown["expires_at"]),
    );

    for (index, bad) in [
        "'next week'",
        "NaN",
        "-Infinity",
        "{valueOf: () => 0}",
        "undefined",
    ]
    .into_iter()
    .enumerate()
    {
        let (victim, sid, _) = signed_in(&server, browser()).await;
        let code = format!(
            "exports.onExecutePostLogin = async (event, api) => {{ api.session.setExpiresAt({bad}); }};"
        );
        bind_post_login(&server, &token, &format!("bad session end {index}"), &code).await;
        let before = ends_of(sid.clone()).await;
        let answer = silently(&server, &victim).await;
        unbind_all(&server, &token).await;
        let after = ends_of(sid.clone()).await;
        tally.case(
            format!("setExpiresAt({bad}): the sign-in fails closed, the session as it was"),
            answer.get("error").map(String::as_str) == Some("access_denied")
                && !answer.contains_key("code")
                && after.is_some_and(|(_, ends_by)| ends_by.is_none())
                && after.map(|(end, _)| end) >= before.map(|(end, _)| end),
            format_args!("{answer:?}, {before:?} → {after:?}"),
        );
    }

    // Far past and far future as numbers JavaScript has: saturated, never wrapped around.
    for (label, at, ends) in [
        ("-1e300 (far past): the session is over", "-1e300", false),
        (
            "1e300 (far future): the session lives as the settings say",
            "1e300",
            true,
        ),
    ] {
        let (victim, sid, _) = signed_in(&server, browser()).await;
        let code = format!(
            "exports.onExecutePostLogin = async (event, api) => {{ api.session.setExpiresAt({at}); api.session.setIdleExpiresAt({at}); }};"
        );
        bind_post_login(&server, &token, label, &code).await;
        let answer = silently(&server, &victim).await;
        unbind_all(&server, &token).await;
        let alive = server.signs_in_silently(&victim).await;
        tally.case(
            label,
            answer.contains_key("code") && alive == ends && ends_of(sid).await.is_some() == ends,
            format_args!("{answer:?}, alive {alive}"),
        );
    }

    // A refresh has no session: an action ending "the session" at 1970 there ends none.
    let (victim, sid, refresh) = signed_in(&server, browser()).await;
    bind_post_login(
        &server,
        &token,
        "ending at refresh",
        "exports.onExecutePostLogin = async (event, api) => { if (event.transaction.protocol === 'oauth2-refresh-token') { api.session.setExpiresAt(0); api.session.setIdleExpiresAt(0); } };",
    )
    .await;
    let (status, body) = server.refresh(&refresh).await;
    unbind_all(&server, &token).await;
    let alive = server.signs_in_silently(&victim).await;
    tally.case(
        "set at a refresh: the refresh is served, the browser's session lives on",
        status == 200 && alive && ends_of(sid).await.is_some_and(|(_, by)| by.is_none()),
        format_args!("{status} {body}, alive {alive}"),
    );

    let now_ends = ends_of(bystander_sid).await;
    let alive = server.signs_in_silently(&bystander).await;
    tally.case(
        "the bystander's session is untouched",
        alive
            && now_ends.map(|(_, by)| by) == Some(None)
            && now_ends.map(|(end, _)| end) >= bystander_ends.map(|(end, _)| end),
        format_args!("{bystander_ends:?} → {now_ends:?}"),
    );
    tally.finish();
}

#[tokio::test]
async fn an_action_writes_bounded_metadata_on_its_own_session_and_token_only() {
    // `api.session.setMetadata` and its kin write on the session of the sign-in they run in,
    // `api.refreshToken.setMetadata` on the token exchanged, within Auth0's bounds: hostile
    // arguments fail the sign-in or the refresh closed and write nothing, prototype names
    // are plain keys, and a refresh — no session — writes on no session.
    let server = spawn().await;
    let token = server.management_token(SCOPES).await;
    let mut tally = Tally::new("actions_flows/metadata");
    let metadata_of = |sid: String| {
        let store = server.store.clone();
        async move {
            store
                .find_session_by_sid(&sid, (now(), 0))
                .await
                .ok()
                .flatten()
                .map(|details| details.metadata)
        }
    };
    let (bystander, bystander_sid, bystander_refresh) = signed_in(&server, browser()).await;
    let (victim, sid, refresh) = signed_in(&server, browser()).await;
    bind_post_login(
        &server,
        &token,
        "tagging",
        "exports.onExecutePostLogin = async (event, api) => { api.session.setMetadata('tag', 'mine'); };",
    )
    .await;
    let answer = silently(&server, &victim).await;
    unbind_all(&server, &token).await;
    let tagged = metadata_of(sid.clone()).await.unwrap_or_default();
    tally.case(
        "an action writes on the session it runs in",
        answer.contains_key("code") && tagged.len() == 1 && tagged["tag"] == "mine",
        format_args!("{answer:?}, {tagged:?}"),
    );

    for (index, bad) in [
        "api.session.setMetadata('k', 42)",
        "api.session.setMetadata('k', {toString() { return 'v'; }})",
        "api.session.setMetadata({toString() { return 'k'; }}, 'v')",
        "api.session.setMetadata('k', 'x'.repeat(256))",
        "api.session.setMetadata('k'.repeat(1e6), 'v')",
        "api.session.setMetadata('', 'v')",
        "api.session.deleteMetadata(null)",
        "for (let i = 0; i < 1000; i++) api.session.setMetadata('k' + i, 'v')",
        "api.session.evictMetadata(); for (let i = 0; i < 26; i++) api.session.setMetadata('k' + i, 'v')",
    ]
    .into_iter()
    .enumerate()
    {
        let code = format!("exports.onExecutePostLogin = async (event, api) => {{ {bad}; }};");
        bind_post_login(&server, &token, &format!("bad metadata {index}"), &code).await;
        let answer = silently(&server, &victim).await;
        unbind_all(&server, &token).await;
        let after = metadata_of(sid.clone()).await.unwrap_or_default();
        let shown: String = bad.chars().take(60).collect();
        tally.case(
            format!("{shown}: the sign-in fails closed, the metadata as it was"),
            answer.get("error").map(String::as_str) == Some("access_denied")
                && !answer.contains_key("code")
                && after == tagged,
            format_args!("{answer:?}, {after:?}"),
        );
    }

    bind_post_login(
        &server,
        &token,
        "prototype names",
        "exports.onExecutePostLogin = async (event, api) => { api.session.setMetadata('__proto__', 'polluted').session.setMetadata('constructor', '</script><script>alert(1)</script>'); };",
    )
    .await;
    let answer = silently(&server, &victim).await;
    unbind_all(&server, &token).await;
    let after = metadata_of(sid.clone()).await.unwrap_or_default();
    tally.case(
        "prototype names are plain keys beside what was there",
        answer.contains_key("code")
            && after.len() == 3
            && after["__proto__"] == "polluted"
            && after["constructor"] == "</script><script>alert(1)</script>"
            && after["tag"] == "mine",
        format_args!("{answer:?}, {after:?}"),
    );

    bind_post_login(
        &server,
        &token,
        "evicting at refresh",
        "exports.onExecutePostLogin = async (event, api) => { api.session.evictMetadata(); api.session.setMetadata('refresh', 'yes'); };",
    )
    .await;
    let (status, body) = server.refresh(&refresh).await;
    unbind_all(&server, &token).await;
    tally.case(
        "set at a refresh: the refresh is served, no session written",
        status == 200 && metadata_of(sid.clone()).await.unwrap_or_default() == after,
        format_args!("{status} {body}"),
    );
    // The token that refresh issued is the family's live one now.
    let refresh = body["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    // A refresh token's metadata: written at a refresh, on the exchanged token's family.
    let family_of = |token: String| {
        let store = server.store.clone();
        async move {
            store
                .find_refresh_family(&tessera_core::ids::secret_hash(&token), now())
                .await
                .ok()
                .flatten()
                .map(|family| family.metadata)
        }
    };
    bind_post_login(
        &server,
        &token,
        "tagging the token",
        "exports.onExecutePostLogin = async (event, api) => { if (event.refresh_token) api.refreshToken.setMetadata('tag', 'mine'); };",
    )
    .await;
    let (status, body) = server.refresh(&refresh).await;
    unbind_all(&server, &token).await;
    let refresh = body["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let tagged = family_of(refresh.clone()).await.unwrap_or_default();
    tally.case(
        "an action writes on the refresh token exchanged",
        status == 200 && tagged.len() == 1 && tagged["tag"] == "mine",
        format_args!("{status} {body}, {tagged:?}"),
    );
    for (index, bad) in [
        "api.refreshToken.setMetadata('k', 42)",
        "api.refreshToken.setMetadata('k', {toString() { return 'v'; }})",
        "api.refreshToken.setMetadata('k'.repeat(1e6), 'v')",
        "api.refreshToken.deleteMetadata([])",
        "for (let i = 0; i < 1000; i++) api.refreshToken.setMetadata('k' + i, 'v')",
    ]
    .into_iter()
    .enumerate()
    {
        let code = format!("exports.onExecutePostLogin = async (event, api) => {{ {bad}; }};");
        bind_post_login(
            &server,
            &token,
            &format!("bad token metadata {index}"),
            &code,
        )
        .await;
        let (status, body) = server.refresh(&refresh).await;
        unbind_all(&server, &token).await;
        let after = family_of(refresh.clone()).await.unwrap_or_default();
        let shown: String = bad.chars().take(60).collect();
        tally.case(
            format!("{shown}: the refresh is refused, the metadata as it was"),
            status == 403 && body["error"] == "access_denied" && after == tagged,
            format_args!("{status} {body}, {after:?}"),
        );
    }
    // The token the refusals left is still the live one: they changed nothing.
    let (status, body) = server.refresh(&refresh).await;
    tally.case(
        "after the refusals the token still refreshes",
        status == 200
            && family_of(
                body["refresh_token"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
            .await
                == Some(tagged.clone()),
        format_args!("{status} {body}"),
    );

    let untouched = metadata_of(bystander_sid).await;
    tally.case(
        "the bystander's session has no metadata",
        untouched.is_some_and(|metadata| metadata.is_empty())
            && server.signs_in_silently(&bystander).await,
        "the bystander's session was written or ended",
    );
    let bystanders_token = family_of(bystander_refresh).await;
    tally.case(
        "the bystander's refresh token has no metadata",
        bystanders_token
            .as_ref()
            .is_some_and(|metadata| metadata.is_empty()),
        format_args!("{bystanders_token:?}"),
    );
    tally.finish();
}

/// The year now, as an RFC 3339 time begins.
fn this_year() -> String {
    tessera_core::claims::rfc3339(now())[..4].to_string()
}

#[tokio::test]
async fn session_revoke_ends_only_its_own_session_and_fails_closed_on_hostile_arguments() {
    let server = spawn().await;
    let token = server.management_token(SCOPES).await;
    let mut tally = Tally::new("actions_flows/session_revoke");
    // A browser with a live session; each action below runs at its silent sign-in.
    let bystander = browser();
    server.authorization_code(&bystander, "openid", None).await;
    for (n, (label, code)) in [
        ("a number as the reason", "api.session.revoke(42);"),
        ("no reason", "api.session.revoke();"),
        (
            "options that are a string",
            "api.session.revoke('r', 'keep');",
        ),
        (
            "preserveRefreshTokens as text",
            "api.session.revoke('r', { preserveRefreshTokens: 'yes' });",
        ),
        (
            "a reason whose toString lies",
            "api.session.revoke({ toString() { return 'r'; } });",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let victim = browser();
        server.authorization_code(&victim, "openid", None).await;
        bind_post_login(
            &server,
            &token,
            &format!("hostile-revoke-{n}"),
            &format!("exports.onExecutePostLogin = async (event, api) => {{ {code} }};"),
        )
        .await;
        let answer = silently(&server, &victim).await;
        unbind_all(&server, &token).await;
        let alive = server.signs_in_silently(&victim).await;
        tally.case(
            format_args!("{label}: the login fails closed, the session is not ended"),
            answer.get("error").map(String::as_str) == Some("access_denied")
                && !answer.contains_key("code")
                && alive,
            format_args!("{answer:?}, alive {alive}"),
        );
    }
    // A 100 kB reason: the session ends, the application gets a bounded description.
    let victim = browser();
    server.authorization_code(&victim, "openid", None).await;
    bind_post_login(
        &server,
        &token,
        "long-revoke",
        "exports.onExecutePostLogin = async (event, api) => { api.session.revoke('r'.repeat(100000)); };",
    )
    .await;
    let answer = silently(&server, &victim).await;
    unbind_all(&server, &token).await;
    let alive = server.signs_in_silently(&victim).await;
    let description = answer.get("error_description").map_or(0, String::len);
    tally.case(
        "a 100 kB reason: access_denied with 500 bytes of it and an ellipsis, the session ended",
        answer.get("error").map(String::as_str) == Some("access_denied")
            && answer
                .get("error_description")
                .is_some_and(|d| d == &format!("{}…", "r".repeat(500)))
            && !alive,
        format_args!("{description} bytes, alive {alive}"),
    );
    // Another browser's session is never the one ended.
    let alive = server.signs_in_silently(&bystander).await;
    tally.case("the bystander's session lives on", alive, alive);
    tally.finish();
}
