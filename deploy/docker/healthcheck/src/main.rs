//! `qt-healthcheck [URL]`: exits 0 when an HTTP GET of URL answers 2xx within the timeout,
//! 1 otherwise (Docker's HEALTHCHECK contract: 0 healthy, 1 unhealthy).
//!
//! The runtime image has no shell and no curl, so the probe is a tiny binary of its own.
//! It speaks just enough HTTP/1.1 for the service's own `/health` and `/ready`: plain
//! `http://`, a host that is an IP address or `localhost`, and the status line of the answer.
//! URL defaults to `http://127.0.0.1:8080/health`, or `QT_HEALTHCHECK_URL` when set; the
//! timeout (connect + answer) is `QT_HEALTHCHECK_TIMEOUT_MS`, default 2000.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

const DEFAULT_URL: &str = "http://127.0.0.1:8080/health";

/// The parts of an `http://host:port/path` URL that the probe needs.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    host: String,
    port: u16,
    path: String,
}

fn parse_url(url: &str) -> Result<Target, String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| format!("only http:// URLs are supported: {url}"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let bad_port = || format!("bad port in {url}");
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        // IPv6 literal: [addr] or [addr]:port
        let (host, after) = bracketed.split_once(']').ok_or_else(|| format!("bad host in {url}"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse::<u16>().map_err(|_| bad_port())?,
            None if after.is_empty() => 80,
            None => return Err(bad_port()),
        };
        (host, port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, p)) => (host, p.parse::<u16>().map_err(|_| bad_port())?),
            None => (authority, 80),
        }
    };
    if host.is_empty() {
        return Err(format!("no host in {url}"));
    }
    Ok(Target { host: host.to_string(), port, path: path.to_string() })
}

/// The status code of an HTTP/1.x status line (`HTTP/1.1 200 OK`).
fn status_code(head: &str) -> Option<u16> {
    let line = head.lines().next()?;
    let mut parts = line.split_whitespace();
    let version = parts.next()?;
    if !version.starts_with("HTTP/1.") {
        return None;
    }
    parts.next()?.parse().ok()
}

fn probe(target: &Target, timeout: Duration) -> Result<u16, String> {
    let addrs: Vec<SocketAddr> = (target.host.as_str(), target.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", target.host))?
        .collect();
    let addr = addrs.first().ok_or_else(|| format!("no address for {}", target.host))?;
    let mut stream = TcpStream::connect_timeout(addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}:{}\r\nUser-Agent: qt-healthcheck\r\nConnection: close\r\n\r\n",
        target.path, target.host, target.port
    );
    stream.write_all(request.as_bytes()).map_err(|e| format!("send: {e}"))?;
    // The status line fits in the first read of any sane server; read a little more in case
    // the answer arrives in small pieces.
    let mut buf = [0u8; 512];
    let mut len = 0;
    while len < buf.len() {
        let n = stream.read(&mut buf[len..]).map_err(|e| format!("read: {e}"))?;
        if n == 0 || buf[..len + n].contains(&b'\n') {
            len += n;
            break;
        }
        len += n;
    }
    let head = String::from_utf8_lossy(&buf[..len]);
    status_code(&head).ok_or_else(|| format!("not an HTTP answer: {:?}", head.lines().next()))
}

fn main() -> ExitCode {
    let arg = std::env::args().nth(1);
    if matches!(arg.as_deref(), Some("-h" | "--help")) {
        println!("usage: qt-healthcheck [URL]   (default {DEFAULT_URL}); exit 0 on a 2xx answer");
        return ExitCode::SUCCESS;
    }
    let url = arg.or_else(|| std::env::var("QT_HEALTHCHECK_URL").ok()).unwrap_or_else(|| DEFAULT_URL.to_string());
    let timeout_ms =
        std::env::var("QT_HEALTHCHECK_TIMEOUT_MS").ok().and_then(|v| v.parse::<u64>().ok()).unwrap_or(2000);
    let result = parse_url(&url).and_then(|t| probe(&t, Duration::from_millis(timeout_ms)));
    match result {
        Ok(code) if (200..300).contains(&code) => ExitCode::SUCCESS,
        Ok(code) => {
            eprintln!("qt-healthcheck: {url} answered {code}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("qt-healthcheck: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        assert_eq!(
            parse_url("http://127.0.0.1:8080/ready").unwrap(),
            Target { host: "127.0.0.1".into(), port: 8080, path: "/ready".into() }
        );
        assert_eq!(
            parse_url("http://localhost").unwrap(),
            Target { host: "localhost".into(), port: 80, path: "/".into() }
        );
        assert_eq!(
            parse_url("http://[::1]:9000/health").unwrap(),
            Target { host: "::1".into(), port: 9000, path: "/health".into() }
        );
        assert_eq!(parse_url("http://[::1]/").unwrap(), Target { host: "::1".into(), port: 80, path: "/".into() });
        assert!(parse_url("https://127.0.0.1/").is_err());
        assert!(parse_url("http://[::1]x/").is_err());
        assert!(parse_url("http://127.0.0.1:notaport/").is_err());
        assert!(parse_url("http://:80/").is_err());
    }

    #[test]
    fn reads_status_lines() {
        assert_eq!(status_code("HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(status_code("HTTP/1.0 503 Service Unavailable\r\n"), Some(503));
        assert_eq!(status_code("SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(status_code(""), None);
    }
}
