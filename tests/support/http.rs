//! One-shot HTTP GETs against the metrics/health listeners and reading
//! Prometheus text pages. Blocking ([`http_get`], for tests on plain
//! threads) and async ([`http_get_async`]) forms of the same request;
//! every read is bounded by [`HTTP_LIMIT`].

use std::io::Read;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Upper bound for one request and its response.
pub const HTTP_LIMIT: Duration = Duration::from_secs(30);

/// Status code and body of a raw `HTTP/1.x` response; panics on anything
/// else.
fn parse_response(resp: &str) -> (u16, String) {
    let code = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad http response {resp:?}"));
    let body = resp.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    (code, body.to_owned())
}

/// A one-shot HTTP/1.1 GET on loopback: (status code, body).
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(addr).expect("connect http");
    s.set_read_timeout(Some(HTTP_LIMIT)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read http response");
    parse_response(&resp)
}

/// [`http_get`] on the tokio runtime: (status code, body).
pub async fn http_get_async(addr: impl tokio::net::ToSocketAddrs, path: &str) -> (u16, String) {
    let io = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
        let mut resp = String::new();
        s.read_to_string(&mut resp).await?;
        Ok::<_, std::io::Error>(resp)
    };
    let resp = tokio::time::timeout(HTTP_LIMIT, io)
        .await
        .expect("http timed out")
        .expect("http failed");
    parse_response(&resp)
}

/// [`http_get`] that returns `None` instead of panicking when nothing
/// answers (an instance that is down), with short timeouts. HTTP/1.0, so
/// the body is never chunked (HAProxy's stats page would be).
pub fn try_http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    use std::io::Write;
    let addr_parsed: std::net::SocketAddr = addr.parse().ok()?;
    let mut s = std::net::TcpStream::connect_timeout(&addr_parsed, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let code = resp.split_whitespace().nth(1)?.parse().ok()?;
    let body = resp.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    Some((code, body.to_owned()))
}

/// The value of an unlabelled metric, or of one `name{labels}` line, in a
/// Prometheus text page (0 if absent).
pub fn metric(page: &str, series: &str) -> f64 {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            (k == series).then(|| v.parse().ok()).flatten()
        })
        .unwrap_or(0.0)
}

/// The sum of the series `name` whose labels include all of `labels`
/// (`key="value"` pairs) in a Prometheus text page; 0 if absent.
pub fn metric_sum(page: &str, name: &str, labels: &[&str]) -> f64 {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, v) = l.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            (n == name && labels.iter().all(|lab| rest.contains(lab)))
                .then(|| v.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

/// The distinct `method` label values of the series `name`.
pub fn method_labels(page: &str, name: &str) -> std::collections::BTreeSet<String> {
    page.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter_map(|l| {
            let rest = l.split_once("method=\"")?.1;
            Some(rest.split_once('"')?.0.to_owned())
        })
        .collect()
}
