//! A small SMTP receiver for tests: speaks enough of RFC 5321 for lettre (EHLO/HELO, MAIL,
//! RCPT, DATA with dot-unstuffing, RSET, NOOP, QUIT), plaintext on 127.0.0.1, and hands
//! every message it accepted to the test in the order received.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// Header and body as sent, CRLF line ends, dots unstuffed.
    pub data: String,
}

impl Mail {
    /// A header's value as sent (folded lines joined), if present.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or("");
        let mut value: Option<String> = None;
        for line in head.split("\r\n") {
            if let Some(open) = value.as_mut()
                && line.starts_with([' ', '\t'])
            {
                open.push_str(line);
                continue;
            }
            if value.is_some() {
                break;
            }
            if let Some((key, rest)) = line.split_once(':')
                && key.eq_ignore_ascii_case(name)
            {
                value = Some(rest.trim().to_string());
            }
        }
        value
    }

    /// The body, its transfer encoding (7bit, quoted-printable or base64) undone.
    pub fn body(&self) -> String {
        let body = self
            .data
            .split_once("\r\n\r\n")
            .map_or("", |(_, body)| body);
        match self
            .header("Content-Transfer-Encoding")
            .unwrap_or_default()
            .to_ascii_lowercase()
            .as_str()
        {
            "base64" => {
                use base64::Engine;
                let joined: String = body.split_whitespace().collect();
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(joined)
                    .expect("a base64 body");
                String::from_utf8(bytes).expect("a UTF-8 body")
            }
            "quoted-printable" => {
                let joined = body.replace("=\r\n", "");
                let bytes = joined.as_bytes();
                let mut out = Vec::with_capacity(bytes.len());
                let mut i = 0;
                while i < bytes.len() {
                    if bytes[i] == b'='
                        && let Some(byte) = joined
                            .get(i + 1..i + 3)
                            .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                    {
                        out.push(byte);
                        i += 3;
                    } else {
                        out.push(bytes[i]);
                        i += 1;
                    }
                }
                String::from_utf8(out).expect("a UTF-8 body")
            }
            _ => body.to_string(),
        }
    }

    /// The first URL in the body that contains `marker`, up to a quote, `<` or whitespace.
    pub fn link(&self, marker: &str) -> String {
        let body = self.body();
        let at = body.find(marker).expect("the mail has the link");
        let start = body[..at]
            .rfind(|c: char| c == '"' || c == '>' || c.is_whitespace())
            .map_or(0, |i| i + 1);
        let end = body[at..]
            .find(|c: char| c == '"' || c == '<' || c.is_whitespace())
            .map_or(body.len(), |i| at + i);
        body[start..end].to_string()
    }

    /// The 8-digit code after "Your code: ".
    pub fn code(&self) -> String {
        let start = self.data.find("Your code: ").expect("the mail has a code") + 11;
        let code: String = self.data[start..].chars().take(8).collect();
        assert!(
            code.len() == 8 && code.bytes().all(|b| b.is_ascii_digit()),
            "{code:?}"
        );
        code
    }
}

pub struct SmtpReceiver {
    pub port: u16,
    mails: mpsc::UnboundedReceiver<Mail>,
}

impl SmtpReceiver {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (sender, mails) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(session(stream, sender.clone()));
            }
        });
        SmtpReceiver { port, mails }
    }

    /// `smtp://127.0.0.1:PORT`: plaintext, which Tessera allows for loopback only.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The next message; fails the test if none arrives within 30 s.
    pub async fn next(&mut self) -> Mail {
        tokio::time::timeout(Duration::from_secs(30), self.mails.recv())
            .await
            .expect("a mail arrives within 30 s")
            .expect("the receiver runs")
    }

    /// A message already received and not yet taken, if any.
    pub fn try_next(&mut self) -> Option<Mail> {
        self.mails.try_recv().ok()
    }
}

async fn session(stream: tokio::net::TcpStream, mails: mpsc::UnboundedSender<Mail>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let reply = async |write: &mut tokio::net::tcp::OwnedWriteHalf, text: &str| {
        write.write_all(text.as_bytes()).await.is_ok()
    };
    if !reply(&mut write, "220 test-smtp ESMTP ready\r\n").await {
        return;
    }
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let command = line.trim_end().to_string();
        let upper = command.to_ascii_uppercase();
        let answer = if upper.starts_with("EHLO") {
            "250-test-smtp\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
        } else if upper.starts_with("HELO") {
            "250 test-smtp\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            from = command[10..].trim().to_string();
            to.clear();
            "250 OK\r\n"
        } else if upper.starts_with("RCPT TO:") {
            to.push(
                command[8..]
                    .trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string(),
            );
            "250 OK\r\n"
        } else if upper == "DATA" {
            if !reply(&mut write, "354 end with <CRLF>.<CRLF>\r\n").await {
                return;
            }
            let mut data = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
            }
            let _ = mails.send(Mail {
                from: std::mem::take(&mut from),
                to: std::mem::take(&mut to),
                data,
            });
            "250 OK queued\r\n"
        } else if upper == "RSET" || upper == "NOOP" {
            "250 OK\r\n"
        } else if upper == "QUIT" {
            let _ = reply(&mut write, "221 bye\r\n").await;
            return;
        } else {
            "502 not implemented\r\n"
        };
        if !reply(&mut write, answer).await {
            return;
        }
    }
}
