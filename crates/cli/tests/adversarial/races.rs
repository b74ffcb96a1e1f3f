//! Token endpoint races: many requests at once presenting one code or one refresh token, on
//! both backends. Exactly one redemption may win; a replay, even one that lost a race, revokes
//! what the winner got; concurrent uses of one refresh token are reuse and end the family;
//! another client's uses of a stolen one change nothing.

use std::sync::Arc;

use serde_json::Value;
use tessera_core::AppType;
use tessera_testkit::pg::PgServer;
use tessera_testkit::{API, CALLBACK, TestServer, browser, client, spawn, spawn_on};

use crate::harness::Tally;

const OFFLINE: &str = "openid profile offline_access read:messages";

/// Runs `attempts` copies of `request` at once and returns every (status, body).
async fn at_once<F, Fut>(attempts: usize, request: F) -> Vec<(u16, Value)>
where
    F: Fn() -> Fut,
    Fut: Future<Output = (u16, Value)> + Send + 'static,
{
    let tasks: Vec<_> = (0..attempts).map(|_| tokio::spawn(request())).collect();
    let mut answers = Vec::with_capacity(attempts);
    for task in tasks {
        answers.push(task.await.expect("the request task ends"));
    }
    answers
}

/// Records one case per loser (refused with `invalid_grant`) and one for the winner count.
/// Returns the winners' bodies.
fn tally_winners(
    tally: &mut Tally,
    what: &str,
    answers: Vec<(u16, Value)>,
    winners_allowed: std::ops::RangeInclusive<usize>,
) -> Vec<Value> {
    let mut winners = Vec::new();
    for (attempt, (status, body)) in answers.into_iter().enumerate() {
        if status == 200 {
            winners.push(body);
            continue;
        }
        tally.case(
            format_args!("{what}: attempt {attempt} is refused with invalid_grant"),
            status == 400 && body["error"] == "invalid_grant",
            format_args!("{status} {body}"),
        );
    }
    tally.case(
        format_args!("{what}: {winners_allowed:?} winners"),
        winners_allowed.contains(&winners.len()),
        format_args!("{} winners", winners.len()),
    );
    winners
}

async fn code_redemptions(server: Arc<TestServer>, tally: &mut Tally, backend: &str) {
    let (code, verifier) = server
        .authorization_code(&browser(), OFFLINE, Some(API))
        .await;
    let answers = at_once(30, || {
        let (server, code, verifier) = (server.clone(), code.clone(), verifier.clone());
        async move { server.redeem(&code, &verifier).await }
    })
    .await;
    let winners = tally_winners(
        tally,
        &format!("{backend}: 30 parallel redemptions of one code"),
        answers,
        1..=1,
    );
    // The losers were replays: what the winner got must not outlive them, however the
    // race was ordered.
    for winner in winners {
        let refresh_token = winner["refresh_token"].as_str().unwrap_or_default();
        let (status, body) = server.refresh(refresh_token).await;
        tally.case(
            format_args!("{backend}: the winner's refresh token is revoked by the replays"),
            status == 400 && body["error"] == "invalid_grant",
            format_args!("{status} {body}"),
        );
    }

    // The same code presented at once by another client that may use the code grant.
    let other_secret = tessera_core::ids::client_secret();
    let other = client("Other web app", AppType::RegularWeb, Some(&other_secret));
    server
        .store
        .create_client(&other)
        .await
        .expect("the other client is stored");
    let (code, verifier) = server
        .authorization_code(&browser(), OFFLINE, Some(API))
        .await;
    let mixed = at_once(12, || {
        let (server, code, verifier) = (server.clone(), code.clone(), verifier.clone());
        let (client_id, secret) = (other.client_id.clone(), other_secret.clone());
        async move {
            server
                .token(&[
                    ("grant_type", "authorization_code"),
                    ("client_id", &client_id),
                    ("client_secret", &secret),
                    ("code", &code),
                    ("redirect_uri", CALLBACK),
                    ("code_verifier", &verifier),
                ])
                .await
        }
    })
    .await;
    tally_winners(
        tally,
        &format!("{backend}: another client redeems the SPA's code 12 times at once"),
        mixed,
        0..=0,
    );
    let wrong_verifier = at_once(12, || {
        let (server, code) = (server.clone(), code.clone());
        async move {
            server
                .redeem(&code, &tessera_core::ids::secret_token())
                .await
        }
    })
    .await;
    tally_winners(
        tally,
        &format!("{backend}: 12 parallel redemptions with a wrong verifier"),
        wrong_verifier,
        0..=0,
    );
}

async fn refresh_reuse(server: Arc<TestServer>, tally: &mut Tally, backend: &str) {
    let tokens = server.code_flow(&browser(), OFFLINE, Some(API)).await;
    let token = tokens["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_string();
    let answers = at_once(20, || {
        let (server, token) = (server.clone(), token.clone());
        async move { server.refresh(&token).await }
    })
    .await;
    let winners = tally_winners(
        tally,
        &format!("{backend}: 20 parallel uses of one refresh token"),
        answers,
        0..=1,
    );
    for winner in winners {
        let rotated = winner["refresh_token"].as_str().unwrap_or_default();
        let (status, body) = server.refresh(rotated).await;
        tally.case(
            format_args!("{backend}: the family is revoked after concurrent reuse"),
            status == 400 && body["error"] == "invalid_grant",
            format_args!("{status} {body}"),
        );
    }
    let (status, body) = server.refresh(&token).await;
    tally.case(
        format_args!("{backend}: the raced token stays refused"),
        status == 400 && body["error"] == "invalid_grant",
        format_args!("{status} {body}"),
    );
}

/// Another client presenting a stolen refresh token — alone, then at the same time as its
/// owner — neither rotates it nor spoils it: the owner's use goes on as if nothing happened.
async fn refresh_by_another_client(server: Arc<TestServer>, tally: &mut Tally, backend: &str) {
    let thief = client("Thief SPA", AppType::Spa, None);
    server
        .store
        .create_client(&thief)
        .await
        .expect("the other client is stored");
    let tokens = server.code_flow(&browser(), OFFLINE, Some(API)).await;
    let mut token = tokens["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_string();
    let steal = |token: String| {
        let (server, thief) = (server.clone(), thief.client_id.clone());
        async move {
            server
                .token(&[
                    ("grant_type", "refresh_token"),
                    ("client_id", &thief),
                    ("refresh_token", &token),
                ])
                .await
        }
    };
    let (status, body) = steal(token.clone()).await;
    tally.case(
        format_args!("{backend}: a refresh token presented by another client"),
        status == 400 && body["error"] == "invalid_grant",
        format_args!("{status} {body}"),
    );
    for round in 0..3 {
        let thefts: Vec<_> = (0..6).map(|_| tokio::spawn(steal(token.clone()))).collect();
        let (status, body) = server.refresh(&token).await;
        for theft in thefts {
            let (stolen, answer) = theft.await.expect("the request task ends");
            tally.case(
                format_args!("{backend}: round {round}: a theft at the owner's moment"),
                stolen == 400 && answer["error"] == "invalid_grant",
                format_args!("{stolen} {answer}"),
            );
        }
        let rotated = body["refresh_token"].as_str().map(str::to_string);
        tally.case(
            format_args!("{backend}: round {round}: the owner still rotates its token"),
            status == 200 && rotated.is_some(),
            format_args!("{status} {body}"),
        );
        let Some(rotated) = rotated else { return };
        token = rotated;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn token_endpoint_races_on_sqlite() {
    let mut tally = Tally::new("races/sqlite");
    let server = Arc::new(spawn().await);
    code_redemptions(server.clone(), &mut tally, "sqlite").await;
    refresh_reuse(server.clone(), &mut tally, "sqlite").await;
    refresh_by_another_client(server, &mut tally, "sqlite").await;
    tally.finish();
}

#[test]
fn token_endpoint_races_on_postgres() {
    // The throwaway PostgreSQL is started from the test's own thread (see PgServer).
    let database = PgServer::start();
    let url = database.database();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let mut tally = Tally::new("races/postgres");
        let server = Arc::new(spawn_on(&url).await);
        code_redemptions(server.clone(), &mut tally, "postgres").await;
        refresh_reuse(server.clone(), &mut tally, "postgres").await;
        refresh_by_another_client(server, &mut tally, "postgres").await;
        tally.finish();
    });
}
