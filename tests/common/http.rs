//! A minimal HTTP/1.1 client for the admin API (`Connection: close`, one request per
//! connection) and a reader of number fields in flat JSON texts.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Sends `method path` with `body` as JSON to 127.0.0.1:`port`; returns (status, body).
/// A refused or broken connection gives status 0.
pub fn http(port: u16, method: &str, path: &str, body: &str) -> (u16, String) {
    http_raw(port, method, path, "application/json", body)
}

/// [`http`] with a content type of the caller's choice.
pub fn http_raw(port: u16, method: &str, path: &str, content_type: &str, body: &str) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return (0, String::new()) };
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if s.write_all(req.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

/// A number field of a flat JSON text (the first occurrence of `"field":`).
pub fn json_u64(text: &str, field: &str) -> Option<u64> {
    let at = text.find(&format!("\"{field}\":"))? + field.len() + 3;
    let digits: String = text[at..].trim_start().chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}
