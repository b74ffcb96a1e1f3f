//! `api.redirect` in post-login: sending the user away stops the run, `/continue`
//! resumes it, and the HS256 tokens agree with an independent implementation.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use common::*;
use serde_json::{Value, json};
use tessera_actions::{Engine, Job, Limits, Outcome, Redirect, RedirectContext, Rule, Trigger};

const STATE: &str = "st-7f3a";
const ISSUER: &str = "tenant.example.com";
const SUBJECT: &str = "auth0|u1";
const SECRET: &str = "s3cret-ключ-🔑-value";
const HS256_HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

fn context(allowed: bool, resume_at: Option<usize>) -> RedirectContext {
    RedirectContext {
        allowed,
        state: STATE.to_string(),
        issuer: ISSUER.to_string(),
        subject: SUBJECT.to_string(),
        resume_at,
        kept_refresh_token_metadata: None,
    }
}

fn redirect_job(codes: &[&str], redirect: Option<RedirectContext>, event: Value) -> Job {
    let actions = codes
        .iter()
        .enumerate()
        .map(|(index, code)| {
            let mut action = action(&format!("action-{index}"), code);
            action.secrets.insert("KEY".to_string(), SECRET.to_string());
            action
        })
        .collect();
    Job {
        redirect,
        ..job(Trigger::PostLogin, event, actions)
    }
}

async fn run_redirect(
    engine: &Engine,
    codes: &[&str],
    redirect: Option<RedirectContext>,
) -> Outcome {
    run(engine, redirect_job(codes, redirect, post_login_event())).await
}

/// The post-login event of a `/continue` request with this body and query.
fn continue_event(body: Value, query: Value) -> Value {
    let mut event = post_login_event();
    event["request"]["body"] = body;
    event["request"]["query"] = query;
    event
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn sign(secret: &str, header: &str, claims: &Value) -> String {
    let input = format!("{}.{}", B64.encode(header), B64.encode(claims.to_string()));
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let tag = hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", B64.encode(tag.as_ref()))
}

/// The claims of an HS256 token made by `encodeToken`, once its header and signature
/// are checked here.
fn verified_claims(token: &str, secret: &str) -> Value {
    let (input, signature) = token.rsplit_once('.').expect("three segments");
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let signature = B64.decode(signature).expect("base64url signature");
    hmac::verify(&key, input.as_bytes(), &signature)
        .unwrap_or_else(|_| panic!("the signature of {token} is valid"));
    let (header, claims) = input.split_once('.').expect("three segments");
    assert_eq!(B64.decode(header).unwrap(), HS256_HEADER.as_bytes());
    serde_json::from_slice(&B64.decode(claims).unwrap()).expect("JSON claims")
}

fn good_claims() -> Value {
    let now = now();
    json!({"iss": "external.example", "sub": SUBJECT, "state": STATE, "iat": now, "exp": now + 300, "verified": "ü"})
}

// ---- sendUserTo ----

#[tokio::test]
async fn send_user_to_stops_the_run_after_its_action() {
    let engine = engine();
    let before = "exports.onExecutePostLogin = async (event, api) => { api.idToken.setCustomClaim('https://x/before', 1); };";
    let redirecting = r#"exports.onExecutePostLogin = async (event, api) => {
        api.redirect.sendUserTo('https://ext.example.com/mfa?x=1', {query: {
            a: 'x y', n: 5, f: 1.5, b: true, nil: null, u: undefined, o: {k: 'v'}, 'é': 'ü&=#',
        }});
        // The action runs to its end.
        api.idToken.setCustomClaim('https://x/redirecting', 2);
    };"#;
    let after = "exports.onExecutePostLogin = async (event, api) => { api.idToken.setCustomClaim('https://x/after', 3); };";
    let outcome = run_redirect(
        &engine,
        &[before, redirecting, after],
        Some(context(true, None)),
    )
    .await;
    assert!(outcome.allowed(), "{outcome:?}");
    assert_eq!(
        outcome.redirect,
        Some(Redirect {
            action_index: 1,
            action_id: "act_action-1".to_string(),
            url: "https://ext.example.com/mfa?x=1&a=x+y&n=5&f=1.5&b=true&o=%7B%22k%22%3A%22v%22%7D&%C3%A9=%C3%BC%26%3D%23".to_string(),
        })
    );
    assert_eq!(outcome.id_token_claims["https://x/before"], 1);
    assert_eq!(outcome.id_token_claims["https://x/redirecting"], 2);
    assert!(!outcome.id_token_claims.contains_key("https://x/after"));
    assert_eq!(outcome.logs.len(), 2);
}

#[tokio::test]
async fn the_last_send_user_to_wins_and_urls_keep_their_query() {
    let engine = engine();
    let twice = r#"exports.onExecutePostLogin = async (event, api) => {
        api.redirect.sendUserTo('https://first.example.com/');
        api.redirect.sendUserTo('HTTP://Second.example.com:8443/p?q=1&', {query: {a: 'b'}});
    };"#;
    let outcome = run_redirect(&engine, &[twice], Some(context(true, None))).await;
    let redirect = outcome.redirect.expect("a redirect");
    // The URL as the parser writes it: scheme and host in lower case.
    assert_eq!(redirect.url, "http://second.example.com:8443/p?q=1&a=b");
    for (url, expected) in [
        ("https://h.example", "https://h.example/?k=v"),
        ("http://[::1]:8080/x", "http://[::1]:8080/x?k=v"),
        ("https://h.example/p?", "https://h.example/p?k=v"),
    ] {
        let code = format!(
            "exports.onExecutePostLogin = async (event, api) => {{ api.redirect.sendUserTo({url:?}, {{query: {{k: 'v'}}}}); }};"
        );
        let outcome = run_redirect(&engine, &[&code], Some(context(true, None))).await;
        assert_eq!(outcome.redirect.expect(url).url, expected);
    }
}

#[tokio::test]
async fn a_denial_wins_over_a_redirect() {
    let engine = engine();
    for code in [
        "exports.onExecutePostLogin = async (event, api) => { api.redirect.sendUserTo('https://e.example'); api.access.deny('no'); };",
        "exports.onExecutePostLogin = async (event, api) => { api.access.deny('no'); api.redirect.sendUserTo('https://e.example'); };",
    ] {
        let outcome = run_redirect(&engine, &[code], Some(context(true, None))).await;
        assert_eq!(outcome.denied.expect("denied").reason, "no");
        assert_eq!(outcome.redirect, None);
    }
}

#[tokio::test]
async fn can_redirect_follows_the_context() {
    let engine = engine();
    let probe = "exports.onExecutePostLogin = async (event, api) => { api.idToken.setCustomClaim('https://x/can', api.redirect.canRedirect()); };";
    for (redirect, expected) in [
        (Some(context(true, None)), true),
        (Some(context(false, None)), false),
        (None, false),
    ] {
        let outcome = run_redirect(&engine, &[probe], redirect).await;
        assert_eq!(outcome.id_token_claims["https://x/can"], expected);
    }
    let send = "exports.onExecutePostLogin = async (event, api) => { api.redirect.sendUserTo('https://e.example'); };";
    for redirect in [Some(context(false, None)), None] {
        let outcome = run_redirect(&engine, &[send], redirect).await;
        assert!(
            failure_message(&outcome)
                .starts_with("Error: api.redirect.sendUserTo: this login cannot redirect"),
            "{outcome:?}"
        );
        assert_eq!(outcome.redirect, None);
    }
    // Catching the error does not make a redirect either.
    let caught = "exports.onExecutePostLogin = async (event, api) => { try { api.redirect.sendUserTo('https://e.example'); } catch (_) {} };";
    let outcome = run_redirect(&engine, &[caught], Some(context(false, None))).await;
    assert!(
        outcome.allowed() && outcome.redirect.is_none(),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn urls_a_browser_should_not_be_sent_to_fail_the_action() {
    let engine = engine();
    let long = format!("https://e.example/{}", "a".repeat(2040));
    let cases: Vec<(&str, &str, &str)> = vec![
        ("'ftp://e.example/'", "{}", "must be https: or http:"),
        ("'javascript:alert(1)'", "{}", "must be absolute"),
        ("'/relative'", "{}", "must be absolute"),
        ("'https://'", "{}", "must have a host"),
        ("'https:///path'", "{}", "must have a host"),
        ("'https://user:pw@e.example/'", "{}", "user info"),
        ("'https://e.example/a b'", "{}", "percent-encoded"),
        ("'https://e.example/\\n'", "{}", "percent-encoded"),
        (
            "'https://e.example\\\\@evil.example/'",
            "{}",
            "percent-encoded",
        ),
        ("'https://hôst.example/'", "{}", "percent-encoded"),
        ("'https://e.example/%zz'", "{}", "hexadecimal"),
        ("'https://e.example/#frag'", "{}", "#fragment"),
        ("'https://e.example:99999/'", "{}", "port"),
        ("'https://e.example/?state=x'", "{}", "state parameter"),
        ("'https://e.example/?%73tate=x'", "{}", "state parameter"),
        (
            "'https://e.example/'",
            "{query: {state: 'x'}}",
            "state parameter",
        ),
        (&long, "{query: {k: 'v'}}", "longer than 2048 bytes"),
        ("42", "{}", "the URL must be a string"),
        (
            "'https://e.example/'",
            "{query: 'a=b'}",
            "options.query must be an object",
        ),
    ];
    for (url, options, expected) in cases {
        let url = if url.starts_with("https://e.example/aaa") {
            format!("'{url}'")
        } else {
            url.to_string()
        };
        let code = format!(
            "exports.onExecutePostLogin = async (event, api) => {{ api.redirect.sendUserTo({url}, {options}); }};"
        );
        let outcome = run_redirect(&engine, &[&code], Some(context(true, None))).await;
        let message = failure_message(&outcome);
        assert!(
            message.contains("api.redirect.sendUserTo") && message.contains(expected),
            "{url}: expected {expected:?} in {message:?}"
        );
        assert_eq!(outcome.logs[0].error.as_deref(), Some(message.as_str()));
        assert_eq!(outcome.redirect, None);
    }
}

// ---- resuming at /continue ----

const CONTINUING: &str = r#"exports.onExecutePostLogin = async (event, api) => {
        api.idToken.setCustomClaim('https://x/executed-1', true);
    };
    exports.onContinuePostLogin = async (event, api) => {
        api.idToken.setCustomClaim('https://x/continued', event.request.query.code);
    };"#;

#[tokio::test]
async fn a_resumed_run_continues_on_the_action_that_redirected() {
    let engine = engine();
    let before = "exports.onExecutePostLogin = async (event, api) => { api.idToken.setCustomClaim('https://x/before', true); };";
    let after = r#"exports.onExecutePostLogin = async (event, api) => {
        api.idToken.setCustomClaim('https://x/after', api.rules.wasExecuted('rul_r'));
    };
    exports.onContinuePostLogin = async (event, api) => { api.idToken.setCustomClaim('https://x/after-continued', true); };"#;
    let mut job = redirect_job(
        &[before, CONTINUING, after],
        Some(context(true, Some(1))),
        continue_event(json!({}), json!({"code": "c-1"})),
    );
    job.rules = vec![Rule {
        id: "rul_r".to_string(),
        name: "r".to_string(),
        script: "function (user, context, callback) { context.idToken['https://x/rule'] = 1; callback(null, user, context); }".to_string(),
    }];
    let outcome = run(&engine, job).await;
    assert!(outcome.allowed(), "{outcome:?}");
    assert_eq!(
        Value::Object(outcome.id_token_claims.clone()),
        json!({"https://x/continued": "c-1", "https://x/after": false})
    );
    let names: Vec<&str> = outcome.logs.iter().map(|log| log.name.as_str()).collect();
    assert_eq!(names, ["action-1", "action-2"]);
    assert_eq!(outcome.redirect, None);
}

#[tokio::test]
async fn resuming_an_action_without_on_continue_post_login_fails() {
    let engine = engine();
    let plain = "exports.onExecutePostLogin = async (event, api) => {};";
    let outcome = run_redirect(&engine, &[plain, plain], Some(context(true, Some(1)))).await;
    assert_eq!(
        failure_message(&outcome),
        "Error: the action does not export onContinuePostLogin"
    );
    assert_eq!(outcome.failed.unwrap().by, "action-1");
}

#[tokio::test]
async fn resuming_past_the_last_action_fails() {
    let engine = engine();
    let outcome = run_redirect(&engine, &[CONTINUING], Some(context(true, Some(1)))).await;
    assert!(
        failure_message(&outcome).contains("cannot resume at action 1"),
        "{outcome:?}"
    );
    let outcome = run_redirect(&engine, &[], Some(context(true, Some(0)))).await;
    assert!(
        failure_message(&outcome).contains("cannot resume at action 0"),
        "{outcome:?}"
    );
    let mut job = redirect_job(&[CONTINUING], Some(context(true, Some(0))), json!({}));
    job.trigger = Trigger::CredentialsExchange;
    let outcome = run(&engine, job).await;
    assert!(failure_message(&outcome).contains("cannot resume"));
}

#[tokio::test]
async fn a_resumed_run_may_redirect_again() {
    let engine = engine();
    let again = r#"exports.onExecutePostLogin = async (event, api) => {
        api.redirect.sendUserTo('https://second.example/');
    };"#;
    let outcome = run_redirect(
        &engine,
        &[CONTINUING, again, CONTINUING],
        Some(context(true, Some(0))),
    )
    .await;
    assert_eq!(
        outcome.redirect,
        Some(Redirect {
            action_index: 1,
            action_id: "act_action-1".to_string(),
            url: "https://second.example/".to_string(),
        })
    );
    let in_continue = r#"exports.onContinuePostLogin = async (event, api) => {
        api.redirect.sendUserTo('https://again.example/');
    };"#;
    let outcome = run_redirect(
        &engine,
        &[CONTINUING, in_continue, CONTINUING],
        Some(context(true, Some(1))),
    )
    .await;
    let redirect = outcome.redirect.expect("a redirect");
    assert_eq!(
        (redirect.action_index, redirect.url.as_str()),
        (1, "https://again.example/")
    );
    assert_eq!(outcome.logs.len(), 1);
}

// ---- encodeToken ----

#[tokio::test]
async fn encode_token_signs_hs256_with_the_payload_and_the_standard_claims() {
    let engine = engine();
    let code = r#"exports.onExecutePostLogin = async (event, api) => {
        const payload = {name: 'Zoë ☃ 😀', n: 1, nested: {a: [1, 2]}, sub: 'spoofed', iss: 'spoofed', exp: 1};
        api.idToken.setCustomClaim('https://x/short', api.redirect.encodeToken({secret: event.secrets.KEY, payload, expiresInSeconds: 60}));
        api.idToken.setCustomClaim('https://x/default', api.redirect.encodeToken({secret: event.secrets.KEY, payload: {}}));
    };"#;
    let started = now();
    let outcome = run_redirect(&engine, &[code], Some(context(false, None))).await;
    assert!(outcome.allowed(), "{outcome:?}");
    let short = verified_claims(
        outcome.id_token_claims["https://x/short"].as_str().unwrap(),
        SECRET,
    );
    let iat = short["iat"].as_u64().expect("iat");
    assert!(iat >= started && iat <= now(), "{short}");
    assert_eq!(
        short,
        json!({
            "name": "Zoë ☃ 😀", "n": 1, "nested": {"a": [1, 2]},
            "iss": ISSUER, "sub": SUBJECT, "state": STATE, "iat": iat, "exp": iat + 60,
        })
    );
    let default = verified_claims(
        outcome.id_token_claims["https://x/default"]
            .as_str()
            .unwrap(),
        SECRET,
    );
    assert_eq!(
        default["exp"].as_u64().unwrap() - default["iat"].as_u64().unwrap(),
        900
    );
    assert_eq!(default["state"], STATE);
}

#[tokio::test]
async fn encode_token_agrees_with_hmac_sha256_at_every_block_boundary() {
    // Some 150 tokens take a few hundred milliseconds: room for a loaded test machine.
    let engine = Engine::start(Limits {
        per_action: Duration::from_secs(20),
        per_trigger: Duration::from_secs(20),
        ..Limits::default()
    });
    // Keys longer than a block are hashed alone: SHA-256 of exactly these lengths.
    // Payloads of 0..=70 characters move the signed input across block boundaries.
    let code = r#"exports.onExecutePostLogin = async (event, api) => {
        const tokens = [];
        for (const length of [1, 31, 55, 56, 63, 64, 65, 119, 120, 127, 128, 129, 1000]) {
            const secret = 'k'.repeat(length);
            for (let size = 0; size <= 70; size += length === 1 ? 1 : 9) {
                tokens.push([secret, api.redirect.encodeToken({secret, payload: {p: 'é'.repeat(size)}})]);
            }
        }
        for (const secret of ['é', 'ü'.repeat(40), '😀'.repeat(17), 'aé😀☃'.repeat(50)]) {
            tokens.push([secret, api.redirect.encodeToken({secret, payload: {}})]);
        }
        // A lone surrogate is encoded as U+FFFD, as Node's Buffer does.
        tokens.push(['\ufffdx', api.redirect.encodeToken({secret: '\ud800x', payload: {}})]);
        api.idToken.setCustomClaim('https://x/tokens', tokens);
    };"#;
    let outcome = run_redirect(&engine, &[code], Some(context(true, None))).await;
    assert!(outcome.allowed(), "{outcome:?}");
    let tokens = outcome.id_token_claims["https://x/tokens"]
        .as_array()
        .unwrap();
    assert!(tokens.len() > 100);
    for pair in tokens {
        let claims = verified_claims(pair[1].as_str().unwrap(), pair[0].as_str().unwrap());
        assert_eq!(claims["sub"], SUBJECT);
    }
}

#[tokio::test]
async fn encode_token_refuses_bad_options() {
    let engine = engine();
    let code = r#"exports.onExecutePostLogin = async (event, api) => {
        const results = [];
        for (const options of [
            undefined, {payload: {}}, {secret: '', payload: {}}, {secret: 5, payload: {}},
            {secret: 'k'}, {secret: 'k', payload: 'x'}, {secret: 'k', payload: [1]}, {secret: 'k', payload: null},
            {secret: 'k', payload: {big: 1n}},
            {secret: 'k', payload: {}, expiresInSeconds: 0}, {secret: 'k', payload: {}, expiresInSeconds: -5},
            {secret: 'k', payload: {}, expiresInSeconds: NaN}, {secret: 'k', payload: {}, expiresInSeconds: Infinity},
            {secret: 'k', payload: {}, expiresInSeconds: '60'}, {secret: 'k', payload: {}, expiresInSeconds: 1e9},
        ]) {
            try { api.redirect.encodeToken(options); results.push('returned'); }
            catch (error) { results.push(error.name + ': ' + error.message); }
        }
        api.idToken.setCustomClaim('https://x/results', results);
    };"#;
    let outcome = run_redirect(&engine, &[code], Some(context(true, None))).await;
    for result in outcome.id_token_claims["https://x/results"]
        .as_array()
        .unwrap()
    {
        let result = result.as_str().unwrap();
        assert!(
            result.starts_with("TypeError: api.redirect.encodeToken: "),
            "{result}"
        );
    }
    let none = "exports.onExecutePostLogin = async (event, api) => { api.redirect.encodeToken({secret: 'k', payload: {}}); };";
    let outcome = run_redirect(&engine, &[none], None).await;
    assert_eq!(
        failure_message(&outcome),
        "Error: api.redirect.encodeToken: this login cannot redirect"
    );
}

// ---- validateToken ----

const VALIDATING: &str = r#"exports.onContinuePostLogin = async (event, api) => {
        const payload = api.redirect.validateToken({secret: event.secrets.KEY});
        api.idToken.setCustomClaim('https://x/payload', payload);
    };"#;

async fn validate(engine: &Engine, body: Value, query: Value) -> Outcome {
    let job = redirect_job(
        &[VALIDATING],
        Some(context(true, Some(0))),
        continue_event(body, query),
    );
    run(engine, job).await
}

#[tokio::test]
async fn validate_token_returns_the_payload_of_a_token_signed_elsewhere() {
    let engine = engine();
    let claims = good_claims();
    let token = sign(SECRET, HS256_HEADER, &claims);
    let outcome = validate(&engine, json!({"session_token": token}), json!({})).await;
    assert!(outcome.allowed(), "{outcome:?}");
    assert_eq!(outcome.id_token_claims["https://x/payload"], claims);
    // From the query when the body has none.
    let outcome = validate(&engine, json!(null), json!({"session_token": token})).await;
    assert_eq!(outcome.id_token_claims["https://x/payload"], claims);
    // The body's wins, and another parameter name can be asked for.
    let named = r#"exports.onContinuePostLogin = async (event, api) => {
        api.idToken.setCustomClaim('https://x/payload', api.redirect.validateToken({secret: event.secrets.KEY, tokenParameterName: 'tok'}));
    };"#;
    let job = redirect_job(
        &[named],
        Some(context(true, Some(0))),
        continue_event(json!({"tok": token}), json!({"tok": "garbage"})),
    );
    let outcome = run(&engine, job).await;
    assert_eq!(outcome.id_token_claims["https://x/payload"], claims);
}

#[tokio::test]
async fn validate_token_reads_the_request_as_it_came() {
    let engine = engine();
    let claims = good_claims();
    let token = sign(SECRET, HS256_HEADER, &claims);
    let forged_claims = json!({"iss": "x", "sub": SUBJECT, "state": STATE, "iat": now(), "exp": now() + 60, "admin": true});
    let forged = sign("attacker", HS256_HEADER, &forged_claims);
    let code = format!(
        r#"exports.onContinuePostLogin = async (event, api) => {{
        event.request.body.session_token = {forged:?};
        event.request = {{}};
        api.idToken.setCustomClaim('https://x/payload', api.redirect.validateToken({{secret: event.secrets.KEY}}));
    }};"#
    );
    let job = redirect_job(
        &[&code],
        Some(context(true, Some(0))),
        continue_event(json!({"session_token": token}), json!({})),
    );
    let outcome = run(&engine, job).await;
    assert_eq!(
        outcome.id_token_claims["https://x/payload"], claims,
        "{outcome:?}"
    );
}

#[tokio::test]
async fn validate_token_refuses_what_it_should() {
    let engine = engine();
    let claims = good_claims();
    let with = |name: &str, value: Value| {
        let mut claims = claims.clone();
        claims[name] = value;
        claims
    };
    let without = |name: &str| {
        let mut claims = claims.clone();
        claims.as_object_mut().unwrap().remove(name);
        claims
    };
    let good = sign(SECRET, HS256_HEADER, &claims);
    let (input, signature) = good.rsplit_once('.').unwrap();
    let header_segment = input.split_once('.').unwrap().0;
    let tampered = format!(
        "{header_segment}.{}.{signature}",
        B64.encode(with("sub", json!(SUBJECT)).to_string().replace("ü", "u"))
    );
    let none = format!(
        "{}.{}.",
        B64.encode(r#"{"alg":"none","typ":"JWT"}"#),
        B64.encode(claims.to_string())
    );
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "wrong secret",
            json!(sign("another secret", HS256_HEADER, &claims)),
            "the signature does not match",
        ),
        ("alg none", json!(none), "its algorithm is not HS256"),
        (
            "alg HS512",
            json!(sign(SECRET, r#"{"alg":"HS512"}"#, &claims)),
            "its algorithm is not HS256",
        ),
        (
            "alg RS256",
            json!(sign(SECRET, r#"{"alg":"RS256","typ":"JWT"}"#, &claims)),
            "its algorithm is not HS256",
        ),
        (
            "alg hs256",
            json!(sign(SECRET, r#"{"alg":"hs256"}"#, &claims)),
            "its algorithm is not HS256",
        ),
        (
            "expired",
            json!(sign(SECRET, HS256_HEADER, &with("exp", json!(now() - 1)))),
            "it expired",
        ),
        (
            "exp missing",
            json!(sign(SECRET, HS256_HEADER, &without("exp"))),
            "exp is missing or not a number",
        ),
        (
            "exp text",
            json!(sign(
                SECRET,
                HS256_HEADER,
                &with("exp", json!("9999999999"))
            )),
            "exp is missing or not a number",
        ),
        (
            "iat missing",
            json!(sign(SECRET, HS256_HEADER, &without("iat"))),
            "iat is missing or not a number",
        ),
        (
            "wrong state",
            json!(sign(SECRET, HS256_HEADER, &with("state", json!("other")))),
            "State in the token does not match the /continue state",
        ),
        (
            "wrong sub",
            json!(sign(SECRET, HS256_HEADER, &with("sub", json!("auth0|u2")))),
            "sub is not the user",
        ),
        (
            "iss missing",
            json!(sign(SECRET, HS256_HEADER, &without("iss"))),
            "iss is missing or not a string",
        ),
        (
            "iss number",
            json!(sign(SECRET, HS256_HEADER, &with("iss", json!(1)))),
            "iss is missing or not a string",
        ),
        (
            "tampered payload",
            json!(tampered),
            "the signature does not match",
        ),
        (
            "padded signature",
            json!(format!("{good}=")),
            "the signature does not match",
        ),
        (
            "short signature",
            json!(format!("{input}.AAAA")),
            "the signature does not match",
        ),
        ("two segments", json!(input), "not three base64url segments"),
        (
            "four segments",
            json!(format!("{good}.x")),
            "not three base64url segments",
        ),
        (
            "not base64url",
            json!(format!(
                "{}+.{}",
                header_segment,
                &good[header_segment.len() + 1..]
            )),
            "its header is not a base64url JSON object",
        ),
        (
            "header not JSON",
            json!(format!(
                "{}.{}.{signature}",
                B64.encode("nope"),
                B64.encode("{}")
            )),
            "its header is not a base64url JSON object",
        ),
        (
            "claims not an object",
            json!(sign(SECRET, HS256_HEADER, &json!([1]))),
            "its claims are not a base64url JSON object",
        ),
        (
            "not a string",
            json!(12),
            "the \"session_token\" parameter is not a string",
        ),
        ("empty", json!(""), "not three base64url segments"),
    ];
    for (case, token, expected) in cases {
        let outcome = validate(&engine, json!({"session_token": token}), json!({})).await;
        let message = failure_message(&outcome);
        assert!(
            message.starts_with("Error: The session token is invalid: ")
                && message.contains(expected),
            "{case}: expected {expected:?} in {message:?}"
        );
        assert!(!message.contains(SECRET), "{case}: {message}");
    }
    let outcome = validate(&engine, json!({}), json!({"other": good})).await;
    assert!(
        failure_message(&outcome).contains("the request has no \"session_token\" parameter"),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn validate_token_works_only_when_the_user_came_back() {
    let engine = engine();
    let token = sign(SECRET, HS256_HEADER, &good_claims());
    let executing = r#"exports.onExecutePostLogin = async (event, api) => {
        api.redirect.validateToken({secret: event.secrets.KEY});
    };"#;
    // A continue request's token is no use to onExecutePostLogin, even of a resumed run.
    for resume_at in [None, Some(0)] {
        let job = redirect_job(
            &[CONTINUING, executing],
            Some(context(true, resume_at)),
            continue_event(json!({"session_token": token}), json!({"code": "c"})),
        );
        let outcome = run(&engine, job).await;
        assert!(
            failure_message(&outcome)
                .starts_with("Error: api.redirect.validateToken: there is no /continue request"),
            "{outcome:?}"
        );
    }
    let outcome = run_redirect(&engine, &[executing], None).await;
    assert_eq!(
        failure_message(&outcome),
        "Error: api.redirect.validateToken: this login cannot redirect"
    );
}

#[tokio::test]
async fn a_token_from_encode_token_validates_when_the_user_comes_back() {
    let engine = engine();
    let code = r#"exports.onExecutePostLogin = async (event, api) => {
        const token = api.redirect.encodeToken({secret: event.secrets.KEY, payload: {step: 'mfa', who: 'Zoë'}});
        api.redirect.sendUserTo('https://ext.example/start', {query: {session_token: token}});
    };
    exports.onContinuePostLogin = async (event, api) => {
        const payload = api.redirect.validateToken({secret: event.secrets.KEY});
        api.idToken.setCustomClaim('https://x/who', payload.who);
    };"#;
    let outcome = run_redirect(&engine, &[code], Some(context(true, None))).await;
    let url = outcome.redirect.expect("a redirect").url;
    let token = url
        .split_once("session_token=")
        .expect("the token is in the URL")
        .1
        .to_string();
    let job = redirect_job(
        &[code],
        Some(context(true, Some(0))),
        continue_event(json!({}), json!({"session_token": token})),
    );
    let outcome = run(&engine, job).await;
    assert!(outcome.allowed(), "{outcome:?}");
    assert_eq!(outcome.id_token_claims["https://x/who"], "Zoë");
}

// ---- hostile code ----

#[tokio::test]
async fn replaced_built_ins_do_not_change_a_token() {
    let engine = engine();
    let code = r#"exports.onExecutePostLogin = async (event, api) => {
        const saved = {push: Array.prototype.push, call: Function.prototype.call, JSON: globalThis.JSON};
        globalThis.Math = {imul: () => 0, floor: () => 0};
        globalThis.JSON = {stringify: () => '{}', parse: () => ({})};
        String.prototype.charCodeAt = () => 0;
        String.prototype.slice = () => '';
        String.prototype.split = () => [];
        String.fromCharCode = () => 'x';
        Array.prototype.push = () => 0;
        Array.isArray = () => false;
        Function.prototype.call = function () { return 0; };
        Object.prototype.hasOwnProperty = () => true;
        Object.defineProperty(Object.getPrototypeOf(Uint8Array.prototype), 'length', {get() { return 1; }});
        Object.defineProperty(Object.prototype, 'alg', {get() { return 'HS256'; }, configurable: true});
        Object.defineProperty(Object.prototype, 'iss', {set() {}, get() { return 'evil'; }, configurable: true});
        Date.now = () => 0;
        const token = api.redirect.encodeToken({secret: event.secrets.KEY, payload: {who: 'Zoë'}});
        Array.prototype.push = saved.push;
        Function.prototype.call = saved.call;
        api.idToken.setCustomClaim('https://x/token', token);
    };"#;
    let outcome = run_redirect(&engine, &[code], Some(context(true, None))).await;
    assert!(outcome.allowed(), "{outcome:?}");
    let claims = verified_claims(
        outcome.id_token_claims["https://x/token"].as_str().unwrap(),
        SECRET,
    );
    assert_eq!(
        (
            &claims["who"],
            &claims["iss"],
            &claims["sub"],
            &claims["state"]
        ),
        (
            &json!("Zoë"),
            &json!(ISSUER),
            &json!(SUBJECT),
            &json!(STATE)
        )
    );
    let iat = claims["iat"].as_u64().unwrap();
    assert!(iat + 60 > now(), "the real clock was used: {claims}");
}

#[tokio::test]
async fn replaced_built_ins_do_not_let_a_forged_token_through() {
    let engine = engine();
    let forged = sign(
        "attacker",
        r#"{"alg":"none"}"#,
        &json!({"iss": "x", "sub": SUBJECT, "state": STATE, "iat": 1, "exp": 1}),
    );
    let code = r#"exports.onContinuePostLogin = async (event, api) => {
        String.prototype.charCodeAt = () => 0;
        String.prototype.slice = () => '';
        Array.isArray = () => false;
        Object.prototype.hasOwnProperty = () => true;
        Object.defineProperty(Object.prototype, 'alg', {get() { return 'HS256'; }, configurable: true});
        Object.defineProperty(Object.prototype, 'exp', {get() { return 1e12; }, configurable: true});
        Object.defineProperty(Object.getPrototypeOf(Uint8Array.prototype), 'length', {get() { return 32; }});
        Date.now = () => 0;
        api.redirect.validateToken({secret: event.secrets.KEY});
    };"#;
    let job = redirect_job(
        &[code],
        Some(context(true, Some(0))),
        continue_event(json!({"session_token": forged}), json!({})),
    );
    let outcome = run(&engine, job).await;
    assert!(
        failure_message(&outcome).starts_with("Error: The session token is invalid: "),
        "{outcome:?}"
    );
    // A replaced toJSON makes encodeToken fail cleanly.
    let to_json = r#"exports.onExecutePostLogin = async (event, api) => {
        Object.prototype.toJSON = function () { return 'hijacked'; };
        api.redirect.encodeToken({secret: 'k', payload: {}});
    };"#;
    let outcome = run_redirect(&engine, &[to_json], Some(context(true, None))).await;
    assert!(
        failure_message(&outcome).starts_with("TypeError: api.redirect.encodeToken: payload"),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn one_logins_redirect_context_never_reaches_another() {
    // One worker: every run below uses the same kept context.
    let engine = fast_engine(1);
    let code = r#"let kept;
    exports.onExecutePostLogin = async (event, api) => {
        kept = kept || api;
        let token = null;
        try { token = kept.redirect.encodeToken({secret: 'k', payload: {}}); } catch (error) { token = error.message; }
        api.idToken.setCustomClaim('https://x/can', kept.redirect.canRedirect());
        api.idToken.setCustomClaim('https://x/token', token);
    };
    exports.onContinuePostLogin = async (event, api) => {
        let payload;
        try { payload = api.redirect.validateToken({secret: event.secrets.KEY}); } catch (error) { payload = error.message; }
        api.idToken.setCustomClaim('https://x/payload', payload);
    };"#;
    for (state, subject, allowed) in [("s-1", "auth0|a", true), ("s-2", "auth0|b", false)] {
        let redirect = RedirectContext {
            allowed,
            state: state.to_string(),
            issuer: ISSUER.to_string(),
            subject: subject.to_string(),
            resume_at: None,
            kept_refresh_token_metadata: None,
        };
        let outcome = run_redirect(&engine, &[code], Some(redirect)).await;
        let claims = verified_claims(
            outcome.id_token_claims["https://x/token"].as_str().unwrap(),
            "k",
        );
        assert_eq!(
            (claims["state"].as_str(), claims["sub"].as_str()),
            (Some(state), Some(subject))
        );
        assert_eq!(outcome.id_token_claims["https://x/can"], allowed);
    }
    let outcome = run_redirect(&engine, &[code], None).await;
    assert_eq!(outcome.id_token_claims["https://x/can"], false);
    assert_eq!(
        outcome.id_token_claims["https://x/token"],
        "api.redirect.encodeToken: this login cannot redirect"
    );
    // A continue request's token is not there for the next continue execution.
    let claims = good_claims();
    let token = sign(SECRET, HS256_HEADER, &claims);
    let job = redirect_job(
        &[code],
        Some(context(true, Some(0))),
        continue_event(json!({"session_token": token}), json!({})),
    );
    let outcome = run(&engine, job).await;
    assert_eq!(outcome.id_token_claims["https://x/payload"], claims);
    let job = redirect_job(
        &[code],
        Some(context(true, Some(0))),
        continue_event(json!({}), json!({})),
    );
    let outcome = run(&engine, job).await;
    assert_eq!(
        outcome.id_token_claims["https://x/payload"],
        "The session token is invalid: the request has no \"session_token\" parameter"
    );
}
