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
