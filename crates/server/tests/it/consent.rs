//! Consent (issue 5.4) and restricting an application to some APIs (5.5), over HTTP: a
//! browser-like client drives /authorize, the login page and the consent page.

use serde_json::Value;
use tessera_core::{AppType, Scope};
use tessera_store::{ClientUpdate, ResourceServerUpdate};
use tessera_testkit::*;

const OTHER_API: &str = "https://other/api";
const DECLINED: &str = "User did not authorize the request";

/// The quickstart server plus a third-party SPA, and scope descriptions worth showing.
struct Fixture {
    server: TestServer,
    client_id: String,
}

/// The consent page hands its answer back to `/authorize/resume` (303); the answer the
/// application gets is the resume's. Any other response (a refusal) is returned as is.
async fn follow_resume(
    server: &TestServer,
    browser: &reqwest::Client,
    response: reqwest::Response,
) -> reqwest::Response {
    let to_resume = response.status() == 303
        && response
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .is_some_and(|l| l.starts_with("/authorize/resume?state="));
    if !to_resume {
        return response;
    }
    browser
        .get(server.url(&location(&response)))
        .send()
        .await
        .unwrap()
}

async fn fixture() -> Fixture {
    let server = spawn().await;
    let mut app = client("Partner Dashboard", AppType::Spa, None);
    app.is_first_party = false;
    server.store.create_client(&app).await.unwrap();
    let api = server
        .store
        .find_resource_server(API)
        .await
        .unwrap()
        .unwrap();
    let scopes = vec![
        Scope {
            value: "read:messages".into(),
            description: "Read your messages".into(),
        },
        Scope {
            value: "write:messages".into(),
            description: "Send messages in your name".into(),
        },
    ];
    let update = ResourceServerUpdate {
        scopes: Some(scopes),
        ..Default::default()
    };
    server
        .store
        .update_resource_server(&api.id, &update, now())
        .await
        .unwrap();
    Fixture {
        server,
        client_id: app.client_id,
    }
}

/// What a code request leads to, and its PKCE verifier.
struct Request {
    url: String,
    verifier: String,
}

impl Fixture {
    fn request(&self, scope: &str, extra: &[(&str, &str)]) -> Request {
        self.request_for(&self.client_id, scope, extra)
    }

    fn request_for(&self, client_id: &str, scope: &str, extra: &[(&str, &str)]) -> Request {
        let pkce = pkce();
        let mut serializer = form_urlencoded::Serializer::new(String::new());
        serializer.append_pair("client_id", client_id);
        serializer.append_pair("redirect_uri", CALLBACK);
        serializer.append_pair("response_type", "code");
        serializer.append_pair("scope", scope);
        serializer.append_pair("state", "consent-state");
        serializer.append_pair("code_challenge", &pkce.challenge);
        serializer.append_pair("code_challenge_method", "S256");
        for (k, v) in extra {
            serializer.append_pair(k, v);
        }
        Request {
            url: format!("{}/authorize?{}", self.server.base, serializer.finish()),
            verifier: pkce.verifier,
        }
    }

    /// Signs in when needed; returns where the browser is sent next (a path on the
    /// server, or the application's callback).
    async fn go(&self, browser: &reqwest::Client, request: &Request) -> String {
        self.server.sign_in(browser, &request.url).await
    }

    /// Like `go`, but the answer must be the consent page: returns its HTML.
    async fn consent_page(&self, browser: &reqwest::Client, request: &Request) -> String {
        let to = self.go(browser, request).await;
        assert!(
            to.starts_with("/u/consent?state="),
            "expected the consent page, went to {to}"
        );
        let response = browser.get(self.server.url(&to)).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    }

    async fn answer(
        &self,
        browser: &reqwest::Client,
        page: &str,
        action: &str,
    ) -> reqwest::Response {
        let form = [
            ("state", hidden_field(page, "state")),
            ("csrf", hidden_field(page, "csrf")),
            ("action", action.to_string()),
        ];
        let response = browser
            .post(self.server.url("/u/consent"))
            .form(&form)
            .send()
            .await
            .unwrap();
        follow_resume(&self.server, browser, response).await
    }

    async fn redeem(&self, client_id: &str, back: &str, verifier: &str) -> Value {
        let params = params_of(back);
        assert_eq!(params["state"], "consent-state", "{back}");
        let (status, tokens) = self
            .server
            .token(&[
                ("grant_type", "authorization_code"),
                ("client_id", client_id),
                ("code", &params["code"]),
                ("redirect_uri", CALLBACK),
                ("code_verifier", verifier),
            ])
            .await;
        assert_eq!(status, 200, "{tokens}");
        tokens
    }

    /// Consent page → Accept → code → tokens.
    async fn consent_and_redeem(&self, browser: &reqwest::Client, request: &Request) -> Value {
        let page = self.consent_page(browser, request).await;
        let response = self.answer(browser, &page, "accept").await;
        assert_eq!(response.status(), 302);
        let back = location(&response);
        assert!(back.starts_with(CALLBACK), "{back}");
        self.redeem(&self.client_id, &back, &request.verifier).await
    }

    async fn refresh(&self, refresh_token: &str) -> (u16, Value) {
        self.server
            .token(&[
                ("grant_type", "refresh_token"),
                ("client_id", &self.client_id),
                ("refresh_token", refresh_token),
            ])
            .await
    }
}

const ASK: &str = "openid profile read:messages";

#[tokio::test]
async fn first_party_applications_skip_consent() {
    let f = fixture().await;
    let browser = browser();
    let request = f.request_for(&f.server.spa_client_id, ASK, &[("audience", API)]);
    let back = f.go(&browser, &request).await;
    assert!(back.starts_with(CALLBACK), "no consent page: {back}");
    let tokens = f
        .redeem(&f.server.spa_client_id, &back, &request.verifier)
        .await;
    assert_eq!(tokens["scope"], ASK);
    assert!(
        f.server
            .store
            .list_consents(&f.server.user_id)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn third_party_applications_show_the_scopes_with_their_descriptions() {
    let f = fixture().await;
    let browser = browser();
    let request = f.request(ASK, &[("audience", API)]);
    let to = f.go(&browser, &request).await;
    assert!(to.starts_with("/u/consent?state="), "{to}");
    let response = browser.get(f.server.url(&to)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains(&format!("form-action 'self' {SPA_ORIGIN}")),
        "the answer redirects to the application: {csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    let html = response.text().await.unwrap();
    for expected in [
        "Partner Dashboard",
        "Quickstart API",
        "demo@example.com",
        "Read your messages",
        "read:messages",
        "Your profile: name, nickname and picture",
        "value=\"accept\"",
        "value=\"deny\"",
    ] {
        assert!(html.contains(expected), "{expected} missing from\n{html}");
    }
    assert!(
        !html.contains("Send messages in your name"),
        "only what is asked for is shown"
    );
}

#[tokio::test]
async fn accepting_issues_the_code_and_the_decision_is_remembered() {
    let f = fixture().await;
    let browser = browser();
    let request = f.request(ASK, &[("audience", API)]);
    let page = f.consent_page(&browser, &request).await;
    let response = f.answer(&browser, &page, "accept").await;
    assert_eq!(response.status(), 302);
    let back = location(&response);
    let tokens = f.redeem(&f.client_id, &back, &request.verifier).await;
    assert_eq!(tokens["scope"], ASK);
    let claims = f
        .server
        .verify(tokens["access_token"].as_str().unwrap(), API)
        .await;
    assert_eq!(claims["scope"], ASK);
    assert_eq!(claims["azp"], f.client_id.as_str());

    // The same page cannot be answered twice.
    let again = f.answer(&browser, &page, "accept").await;
    assert_eq!(again.status(), 400);
    assert!(again.headers().get("location").is_none());

    let consent = f
        .server
        .store
        .find_consent(&f.server.user_id, &f.client_id, API)
        .await
        .unwrap()
        .expect("remembered");
    assert_eq!(consent.scopes.join(" "), ASK);

    // Remembered: the next request goes straight back to the application.
    let request = f.request("openid read:messages", &[("audience", API)]);
    let back = f.go(&browser, &request).await;
    assert!(back.starts_with(CALLBACK), "remembered consent: {back}");
    f.redeem(&f.client_id, &back, &request.verifier).await;

    // A new scope asks again, for that scope only; accepting adds it.
    let request = f.request(
        "openid profile read:messages write:messages",
        &[("audience", API)],
    );
    let page = f.consent_page(&browser, &request).await;
    assert!(page.contains("Send messages in your name"));
    assert!(!page.contains("Read your messages"), "already allowed");
    let response = f.answer(&browser, &page, "accept").await;
    let tokens = f
        .redeem(&f.client_id, &location(&response), &request.verifier)
        .await;
    assert_eq!(
        tokens["scope"],
        "openid profile read:messages write:messages"
    );
    let consent = f
        .server
        .store
        .find_consent(&f.server.user_id, &f.client_id, API)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        consent.scopes.join(" "),
        "openid profile read:messages write:messages"
    );

    // prompt=consent shows the page even though everything is remembered.
    let request = f.request(ASK, &[("audience", API), ("prompt", "consent")]);
    let page = f.consent_page(&browser, &request).await;
    assert!(page.contains("Read your messages"));
}

#[tokio::test]
async fn declining_sends_access_denied_and_the_state_to_the_application() {
    let f = fixture().await;
    let browser = browser();
    let request = f.request(ASK, &[("audience", API)]);
    let page = f.consent_page(&browser, &request).await;
    let response = f.answer(&browser, &page, "deny").await;
    assert_eq!(response.status(), 302);
    let back = location(&response);
    assert!(back.starts_with(&format!("{CALLBACK}?")), "{back}");
    let params = params_of(&back);
    assert_eq!(params["error"], "access_denied");
    assert_eq!(params["error_description"], DECLINED);
    assert_eq!(params["state"], "consent-state");
    assert_eq!(params["iss"], f.server.issuer);
    assert!(!params.contains_key("code"));
    assert!(
        f.server
            .store
            .list_consents(&f.server.user_id)
            .await
            .unwrap()
            .is_empty(),
        "a refusal is not remembered"
    );

    // In the response mode the application asked for.
    let request = f.request(ASK, &[("audience", API), ("response_mode", "fragment")]);
    let page = f.consent_page(&browser, &request).await;
    let back = location(&f.answer(&browser, &page, "deny").await);
    assert!(back.starts_with(&format!("{CALLBACK}#")), "{back}");
    assert_eq!(params_of(&back)["error"], "access_denied");
}

#[tokio::test]
async fn prompt_none_needs_remembered_consent() {
    let f = fixture().await;
    let browser = browser();
    // Signed in, but never answered the consent page.
    f.consent_page(&browser, &f.request(ASK, &[("audience", API)]))
        .await;
    let silent = f.request(ASK, &[("audience", API), ("prompt", "none")]);
    let response = browser.get(&silent.url).send().await.unwrap();
    assert_eq!(response.status(), 302);
    let params = params_of(&location(&response));
    assert_eq!(params["error"], "consent_required");
    assert_eq!(params["state"], "consent-state");

    let silent_web_message = f.request(
        ASK,
        &[
            ("audience", API),
            ("prompt", "none"),
            ("response_mode", "web_message"),
        ],
    );
    let response = browser.get(&silent_web_message.url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(html.contains("consent_required"), "{html}");

    f.consent_and_redeem(&browser, &f.request(ASK, &[("audience", API)]))
        .await;
    let silent = f.request(ASK, &[("audience", API), ("prompt", "none")]);
    let response = browser.get(&silent.url).send().await.unwrap();
    let back = location(&response);
    assert!(params_of(&back).contains_key("code"), "{back}");
    f.redeem(&f.client_id, &back, &silent.verifier).await;
}

#[tokio::test]
async fn consent_without_an_api_is_remembered_under_the_userinfo_audience() {
    let f = fixture().await;
    let browser = browser();
    let tokens = f
        .consent_and_redeem(&browser, &f.request("openid email", &[]))
        .await;
    assert_eq!(tokens["scope"], "openid email");
    let key = format!("{}userinfo", f.server.issuer);
    let consent = f
        .server
        .store
        .find_consent(&f.server.user_id, &f.client_id, &key)
        .await
        .unwrap()
        .expect("remembered under <issuer>userinfo");
    assert_eq!(consent.scopes.join(" "), "openid email");
    // Consent for identity only is not consent for an API.
    f.consent_page(&browser, &f.request("openid", &[("audience", API)]))
        .await;
}

#[tokio::test]
async fn revoking_consent_asks_again_and_ends_the_refresh_tokens() {
    let f = fixture().await;
    let browser = browser();
    let ask = "openid read:messages offline_access";
    let tokens = f
        .consent_and_redeem(&browser, &f.request(ask, &[("audience", API)]))
        .await;
    let refresh_token = tokens["refresh_token"].as_str().expect("a refresh token");
    let (status, refreshed) = f.refresh(refresh_token).await;
    assert_eq!(status, 200, "{refreshed}");
    let refresh_token = refreshed["refresh_token"].as_str().unwrap().to_string();

    let revoked = f
        .server
        .store
        .revoke_consents(&f.server.user_id, &f.client_id, Some(API), now())
        .await
        .unwrap();
    assert_eq!((revoked.consents, revoked.refresh_families), (1, 1));

    let (status, body) = f.refresh(&refresh_token).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // The page shows again (the session is still there: no login).
    let page = f
        .consent_page(&browser, &f.request(ask, &[("audience", API)]))
        .await;
    assert!(page.contains("Read your messages"));
    assert!(
        page.contains("Stay connected"),
        "offline_access is asked for"
    );
}

#[tokio::test]
async fn the_consent_form_needs_its_csrf_token_and_the_users_session() {
    let f = fixture().await;
    let browser = browser();
    let request = f.request(ASK, &[("audience", API)]);
    let page = f.consent_page(&browser, &request).await;
    let transaction = hidden_field(&page, "state");
    for csrf in [None, Some("forged-token-forged-token-forged-token-abcd")] {
        let mut form = vec![
            ("state", transaction.clone()),
            ("action", "accept".to_string()),
        ];
        if let Some(csrf) = csrf {
            form.push(("csrf", csrf.to_string()));
        }
        let response = browser
            .post(f.server.url("/u/consent"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "csrf {csrf:?}");
        assert!(response.headers().get("location").is_none());
    }
    // Another browser (no session, no CSRF cookie) cannot answer for the user: the
    // transaction is bound to the browser that started it.
    let response = f.answer(&tessera_testkit::browser(), &page, "accept").await;
    assert_eq!(response.status(), 403);
    assert!(response.headers().get("location").is_none());
    assert!(
        f.server
            .store
            .list_consents(&f.server.user_id)
            .await
            .unwrap()
            .is_empty()
    );
    // The refusals did not use the page up.
    let response = f.answer(&browser, &page, "accept").await;
    assert_eq!(response.status(), 302);
    f.redeem(&f.client_id, &location(&response), &request.verifier)
        .await;
}

#[tokio::test]
async fn scopes_the_user_may_not_get_are_not_asked_for() {
    let f = fixture().await;
    let api = f
        .server
        .store
        .find_resource_server(API)
        .await
        .unwrap()
        .unwrap();
    let update = ResourceServerUpdate {
        enforce_policies: Some(true),
        ..Default::default()
    };
    f.server
        .store
        .update_resource_server(&api.id, &update, now())
        .await
        .unwrap();
    f.server
        .store
        .add_user_permissions(&f.server.user_id, API, &["read:messages".to_string()])
        .await
        .unwrap();
    let browser = browser();
    let request = f.request("openid read:messages write:messages", &[("audience", API)]);
    let page = f.consent_page(&browser, &request).await;
    assert!(page.contains("Read your messages"));
    assert!(
        !page.contains("Send messages in your name"),
        "RBAC: not held"
    );
    let response = f.answer(&browser, &page, "accept").await;
    let tokens = f
        .redeem(&f.client_id, &location(&response), &request.verifier)
        .await;
    assert_eq!(tokens["scope"], "openid read:messages");
    let consent = f
        .server
        .store
        .find_consent(&f.server.user_id, &f.client_id, API)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(consent.scopes.join(" "), "openid read:messages");
}

async fn restrict(f: &Fixture, client_id: &str, apis: Option<Vec<String>>) {
    let update = ClientUpdate {
        allowed_apis: Some(apis),
        ..ClientUpdate::default()
    };
    f.server
        .store
        .update_client(client_id, &update, now())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_restricted_application_gets_only_its_apis() {
    let f = fixture().await;
    f.server
        .store
        .create_resource_server(&api(OTHER_API, &["read:other"]))
        .await
        .unwrap();
    let spa = f.server.spa_client_id.clone();
    restrict(&f, &spa, Some(vec![API.to_string()])).await;
    let browser = browser();

    // Another API: access_denied at once, to the application, with its state.
    let request = f.request_for(&spa, "openid read:other", &[("audience", OTHER_API)]);
    let response = browser.get(&request.url).send().await.unwrap();
    assert_eq!(response.status(), 302);
    let back = location(&response);
    assert!(back.starts_with(CALLBACK), "{back}");
    let params = params_of(&back);
    assert_eq!(params["error"], "access_denied");
    assert_eq!(params["state"], "consent-state");
    assert!(params["error_description"].contains(OTHER_API));

    // An allowed API, and no API at all: fine.
    let request = f.request_for(&spa, ASK, &[("audience", API)]);
    let back = f.go(&browser, &request).await;
    let tokens = f.redeem(&spa, &back, &request.verifier).await;
    assert_eq!(tokens["scope"], ASK);
    let request = f.request_for(&spa, "openid", &[]);
    let back = f.go(&browser, &request).await;
    f.redeem(&spa, &back, &request.verifier).await;

    // Signed in now: still denied, silent authentication included.
    let request = f.request_for(
        &spa,
        "openid",
        &[("audience", OTHER_API), ("prompt", "none")],
    );
    let response = browser.get(&request.url).send().await.unwrap();
    assert_eq!(params_of(&location(&response))["error"], "access_denied");

    // Lifting the restriction lets it through.
    restrict(&f, &spa, None).await;
    let request = f.request_for(&spa, "openid read:other", &[("audience", OTHER_API)]);
    let back = f.go(&browser, &request).await;
    let tokens = f.redeem(&spa, &back, &request.verifier).await;
    assert_eq!(tokens["scope"], "openid read:other");
}

#[tokio::test]
async fn restricting_an_application_stops_its_refresh_tokens_for_other_apis() {
    let f = fixture().await;
    let spa = f.server.spa_client_id.clone();
    let browser = browser();
    let request = f.request_for(
        &spa,
        "openid offline_access read:messages",
        &[("audience", API)],
    );
    let back = f.go(&browser, &request).await;
    let tokens = f.redeem(&spa, &back, &request.verifier).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap();

    f.server
        .store
        .create_resource_server(&api(OTHER_API, &["read:other"]))
        .await
        .unwrap();
    restrict(&f, &spa, Some(vec![OTHER_API.to_string()])).await;
    let (status, body) = f
        .server
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", &spa),
            ("refresh_token", refresh_token),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("access_denied")),
        "{body}"
    );
}

/// The page hands its answer back to `/authorize/resume` in a transaction of its own: that
/// answer is carried out once, for this browser, and only for the user who gave it.
#[tokio::test]
async fn an_answer_goes_back_through_the_resume_once_for_its_user() {
    let f = fixture().await;
    let browser = browser();
    let request = f.request(ASK, &[("audience", API), ("prompt", "consent")]);
    let page = f.consent_page(&browser, &request).await;
    let form = [
        ("state", hidden_field(&page, "state")),
        ("csrf", hidden_field(&page, "csrf")),
        ("action", "accept".to_string()),
    ];
    let response = browser
        .post(f.server.url("/u/consent"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let resume = location(&response);
    assert!(resume.starts_with("/authorize/resume?state="), "{resume}");
    assert_ne!(
        resume,
        format!("/authorize/resume?state={}", hidden_field(&page, "state")),
        "the answer is a transaction of its own"
    );

    // Another browser cannot carry the answer out.
    let other = tessera_testkit::browser();
    let response = other.get(f.server.url(&resume)).send().await.unwrap();
    assert_eq!(response.status(), 403);
    assert!(response.headers().get("location").is_none());

    // prompt=consent is satisfied by the answer (not asked again), once.
    let response = browser.get(f.server.url(&resume)).send().await.unwrap();
    let back = location(&response);
    assert!(back.starts_with(CALLBACK), "{back}");
    f.redeem(&f.client_id, &back, &request.verifier).await;
    let again = browser.get(f.server.url(&resume)).send().await.unwrap();
    assert_eq!(again.status(), 400, "an answer is carried out once");
    assert!(again.headers().get("location").is_none());

    // An answer given by one user is not another's: signed in as someone else in the same
    // browser before the resume, the page asks the new user.
    let page = f.consent_page(&browser, &request).await;
    let form = [
        ("state", hidden_field(&page, "state")),
        ("csrf", hidden_field(&page, "csrf")),
        ("action", "deny".to_string()),
    ];
    let response = browser
        .post(f.server.url("/u/consent"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let resume = location(&response);
    create_user(&f.server.store, "other@example.com", PASSWORD).await;
    let other_pkce = pkce();
    let login = f
        .server
        .submit_login(
            &browser,
            &f.server.authorize_url(&[
                ("response_type", "code"),
                ("prompt", "login"),
                ("code_challenge", &other_pkce.challenge),
                ("code_challenge_method", "S256"),
            ]),
            "other@example.com",
            PASSWORD,
        )
        .await;
    assert_eq!(login.status(), 303, "the other user signed in");
    let response = browser.get(f.server.url(&resume)).send().await.unwrap();
    let to = location(&response);
    assert!(
        to.starts_with("/u/consent?state="),
        "the other user is asked, the first user's decline is not theirs: {to}"
    );
}

/// `/api/v2/grants` with a token holding `scopes`: status and body.
async fn grants_call(
    f: &Fixture,
    token: &str,
    method: reqwest::Method,
    path_and_query: &str,
) -> (u16, Value) {
    let response = reqwest::Client::new()
        .request(method, f.server.url(&format!("/api/v2{path_and_query}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_management_api_lists_and_revokes_grants_with_their_refresh_tokens() {
    let f = fixture().await;
    let browser = browser();
    let ask = "openid read:messages offline_access";
    let tokens = f
        .consent_and_redeem(&browser, &f.request(ask, &[("audience", API)]))
        .await;
    let refresh_token = tokens["refresh_token"].as_str().expect("a refresh token");
    let user = &f.server.user_id;
    let reader = f.server.management_token(&["read:grants"]).await;
    let deleter = f.server.management_token(&["delete:grants"]).await;
    let query = |extra: &str| {
        let user: String = form_urlencoded::byte_serialize(user.as_bytes()).collect();
        format!("/grants?user_id={user}{extra}")
    };

    let (status, listed) = grants_call(&f, &reader, reqwest::Method::GET, &query("")).await;
    assert_eq!(status, 200, "{listed}");
    let grants = listed.as_array().expect("a bare array without totals");
    assert_eq!(grants.len(), 1, "{listed}");
    assert_eq!(grants[0]["clientID"], f.client_id.as_str());
    assert_eq!(grants[0]["user_id"], user.as_str());
    assert_eq!(grants[0]["audience"], API);
    let scope = grants[0]["scope"].as_array().expect("scope is a list");
    assert!(scope.contains(&Value::from("read:messages")), "{listed}");
    let id = grants[0]["id"].as_str().unwrap().to_string();
    let (status, page) = grants_call(
        &f,
        &reader,
        reqwest::Method::GET,
        &query("&include_totals=true&per_page=1"),
    )
    .await;
    assert_eq!((status, page["total"].as_u64()), (200, Some(1)), "{page}");
    assert_eq!(page["grants"][0]["id"], id.as_str());

    // Each operation its scope; a grant nobody has is a 404.
    let (status, body) = grants_call(
        &f,
        &reader,
        reqwest::Method::DELETE,
        &format!("/grants/{id}"),
    )
    .await;
    assert_eq!(
        (status, body["errorCode"].as_str()),
        (403, Some("insufficient_scope"))
    );
    let (status, _) = grants_call(&f, &deleter, reqwest::Method::GET, &query("")).await;
    assert_eq!(status, 403);
    let (status, body) = grants_call(
        &f,
        &deleter,
        reqwest::Method::DELETE,
        "/grants/0123456789ab",
    )
    .await;
    assert_eq!(
        (status, body["errorCode"].as_str()),
        (404, Some("inexistent_grant"))
    );
    let (status, body) = grants_call(&f, &deleter, reqwest::Method::DELETE, "/grants").await;
    assert_eq!(status, 400, "user_id is required: {body}");

    let (status, _) = grants_call(
        &f,
        &deleter,
        reqwest::Method::DELETE,
        &format!("/grants/{id}"),
    )
    .await;
    assert_eq!(status, 204);
    let (status, body) = f.refresh(refresh_token).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "the refresh token ended with the grant"
    );
    let (_, listed) = grants_call(&f, &reader, reqwest::Method::GET, &query("")).await;
    assert_eq!(listed, serde_json::json!([]));

    // All of a user's grants at once.
    let tokens = f
        .consent_and_redeem(&browser, &f.request(ask, &[("audience", API)]))
        .await;
    let refresh_token = tokens["refresh_token"].as_str().expect("a refresh token");
    let (_, listed) = grants_call(&f, &reader, reqwest::Method::GET, &query("")).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    let (status, _) = grants_call(&f, &deleter, reqwest::Method::DELETE, &query("")).await;
    assert_eq!(status, 204);
    let (_, listed) = grants_call(&f, &reader, reqwest::Method::GET, &query("")).await;
    assert_eq!(listed, serde_json::json!([]));
    let (status, _) = f.refresh(refresh_token).await;
    assert_eq!(status, 400);
}
