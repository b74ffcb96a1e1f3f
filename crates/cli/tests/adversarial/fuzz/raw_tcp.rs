//! Malformed HTTP over raw TCP: broken request lines, huge headers, smuggling-shaped
//! framing, CRLF meant for a response header, and clients too slow to finish their header.

use std::time::Duration;

use tessera_testkit::{CALLBACK, SPA_ORIGIN, spawn_with};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::contains;
use super::generate::{INJECTED, encode};
use crate::harness::Tally;

/// Writes `request` on a fresh connection and reads until the end of the first response's
/// header (or the connection's end). `None`: no answer within `patience`.
async fn raw_exchange(addr: &str, request: &[u8], patience: Duration) -> Option<Vec<u8>> {
    let mut stream = TcpStream::connect(addr).await.expect("the server accepts");
    // The server may answer and close before it read everything: not our failure.
    let _ = stream.write_all(request).await;
    let mut received = Vec::new();
    let read = async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
            if contains(&received, "\r\n\r\n") {
                break;
            }
        }
    };
    tokio::time::timeout(patience, read).await.ok()?;
    Some(received)
}

/// The status of a raw response; 0 when the server closed without answering.
fn raw_status(response: &[u8]) -> u16 {
    let text = String::from_utf8_lossy(response);
    text.strip_prefix("HTTP/1.1 ")
        .or_else(|| text.strip_prefix("HTTP/1.0 "))
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

/// Response header lines of a raw response, lower-cased.
fn raw_header_names(response: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(response)
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(name, _)| name.trim().to_ascii_lowercase())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_http_over_raw_tcp() {
    let mut tally = Tally::new("fuzz/raw-tcp");
    let server = spawn_with(|config| {
        // Short, so the slow clients below are cut off quickly.
        config.header_read_timeout = Duration::from_secs(1);
    })
    .await;
    let addr = server.base.trim_start_matches("http://").to_string();
    let patience = Duration::from_secs(20);

    // (what, request, statuses that may answer it; 0 = closed without an answer).
    let huge_header = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    let many_headers = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\n{}\r\n",
        (0..500)
            .map(|i| format!("X-{i}: v\r\n"))
            .collect::<String>()
    );
    let long_uri = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(200_000));
    let long_method = format!("{} / HTTP/1.1\r\nHost: x\r\n\r\n", "G".repeat(100_000));
    let refused: &[u16] = &[0, 400, 405, 413, 414, 431];
    let cases: Vec<(&str, Vec<u8>, &[u16])> = vec![
        ("garbage request line", b"GARBAGE\r\n\r\n".to_vec(), refused),
        ("binary noise", (0..=255u8).cycle().take(4096).collect(), refused),
        ("a request line without a version", b"GET /healthz\r\n\r\n".to_vec(), refused),
        ("HTTP/9.9", b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n".to_vec(), &[0, 400, 505]),
        ("HTTP/0.9 style", b"GET /\r\n".to_vec(), refused),
        ("NUL in the target", b"GET /heal\0thz HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), refused),
        ("a space in the target", b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), refused),
        ("a 200 kB target", long_uri.into_bytes(), refused),
        // An extension method is valid HTTP: no route has it.
        ("a 100 kB method", long_method.into_bytes(), &[0, 404, 405, 431]),
        ("a 1 MiB header", huge_header.into_bytes(), refused),
        ("500 headers", many_headers.into_bytes(), refused),
        (
            "a bare CR inside a header value",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\rX-Injected: b\r\n\r\n".to_vec(),
            refused,
        ),
        (
            "a NUL inside a header value",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n".to_vec(),
            refused,
        ),
        (
            "an obsolete folded header",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n".to_vec(),
            refused,
        ),
        (
            "a space before a header's colon",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A : b\r\n\r\n".to_vec(),
            refused,
        ),
        (
            "two different Content-Lengths",
            b"POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 40\r\n\r\nhello".to_vec(),
            refused,
        ),
        (
            "a negative Content-Length",
            b"POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n".to_vec(),
            refused,
        ),
        (
            "Content-Length and chunked together",
            b"POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nGET /smuggled HTTP/1.1\r\n\r\n".to_vec(),
            refused,
        ),
        (
            "a chunk size that is not hex",
            b"POST /oauth/token HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\nzz\r\nabc\r\n0\r\n\r\n".to_vec(),
            &[0, 400],
        ),
        (
            "an unknown transfer coding",
            b"POST /oauth/token HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n".to_vec(),
            &[0, 400, 501],
        ),
        (
            "a CONNECT request",
            b"CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n".to_vec(),
            &[0, 400, 404, 405],
        ),
        (
            "an absolute-form target for another host",
            b"GET http://evil.example/healthz HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n".to_vec(),
            &[200, 400, 404],
        ),
        (
            "an asterisk target",
            b"OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
            &[0, 400, 404, 405],
        ),
    ];
    for (what, request, allowed) in cases {
        let answer = raw_exchange(&addr, &request, patience).await;
        let status = answer.as_deref().map(raw_status);
        tally.case(
            format_args!("{what}: refused or closed, never a server error"),
            status.is_some_and(|s| allowed.contains(&s)),
            format_args!("{status:?}, expected one of {allowed:?}"),
        );
    }

    // CRLF in values that end up in a Location header.
    let spa = &server.spa_client_id;
    let injections = [
        format!(
            "/authorize?client_id={spa}&redirect_uri={}&response_type=code&state=a%0D%0AX-Injected:%20tz9",
            encode(CALLBACK)
        ),
        format!(
            "/authorize?client_id={spa}&redirect_uri={}&response_type=bogus&state=a%0d%0aX-Injected:%20tz9",
            encode(CALLBACK)
        ),
        format!(
            "/v2/logout?client_id={spa}&returnTo={}%0D%0AX-Injected:%20tz9",
            encode(SPA_ORIGIN)
        ),
        format!(
            "/oidc/logout?client_id={spa}&post_logout_redirect_uri={}&state=%0D%0AX-Injected:%20tz9",
            encode(SPA_ORIGIN)
        ),
        "/u/login?state=%0D%0AX-Injected:%20tz9".to_string(),
    ];
    for target in injections {
        let request = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let answer = raw_exchange(&addr, request.as_bytes(), patience)
            .await
            .unwrap_or_default();
        let status = raw_status(&answer);
        let names = raw_header_names(&answer);
        tally.case(
            format_args!("GET {target}: answered without an injected header"),
            (300..500).contains(&status) && !names.iter().any(|n| n == INJECTED),
            format_args!("{status} {names:?}"),
        );
    }

    // Slow clients: the header timeout closes their connections.
    let silent = async {
        let mut stream = TcpStream::connect(&addr).await.expect("the server accepts");
        let mut buffer = [0u8; 256];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tally.case(
        "a connection that sends nothing is closed",
        tokio::time::timeout(patience, silent).await.is_ok(),
        "still open after 20 s",
    );
    let dribble = async {
        let mut stream = TcpStream::connect(&addr).await.expect("the server accepts");
        let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        for byte in request.iter().cycle() {
            if stream.write_all(&[*byte]).await.is_err() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            // A closed connection shows up as a read of 0 (or an error).
            let mut buffer = [0u8; 256];
            if let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_millis(1), stream.read(&mut buffer)).await
            {
                let answered = raw_status(&buffer[..n]);
                return n == 0 || answered == 408;
            }
        }
        false
    };
    tally.case(
        "a client dribbling its header a byte at a time is disconnected",
        tokio::time::timeout(patience, dribble)
            .await
            .unwrap_or(false),
        "still connected after 20 s",
    );
    let partial = async {
        let mut stream = TcpStream::connect(&addr).await.expect("the server accepts");
        let _ = stream
            .write_all(b"POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Le")
            .await;
        let mut buffer = [0u8; 256];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tally.case(
        "a client that stops in the middle of its header is disconnected",
        tokio::time::timeout(patience, partial).await.is_ok(),
        "still open after 20 s",
    );

    let health = reqwest::get(server.url("/healthz")).await;
    let status = health.map(|r| r.status().as_u16()).unwrap_or(0);
    tally.status("the server still answers /healthz", status, 200);
    tally.finish();
}
