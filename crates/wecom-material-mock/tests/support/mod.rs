//! Raw HTTP/1.1 over `std::net::TcpStream`, and hand-written multipart bodies: the tests do
//! not share any framing code with the emulator or the client core.

#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use wecom_material_mock::MockHandle;

/// A query value percent-encoded (media ids may contain `+`, `/`, `=`).
pub fn enc(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A parsed response, or what arrived before the connection ended.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    /// The `Content-Length` the head promised.
    pub content_length: Option<usize>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    pub fn header_str(&self, name: &str) -> Option<String> {
        self.header(name)
            .map(|v| String::from_utf8(v.to_vec()).expect("utf-8 header"))
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    pub fn errcode(&self) -> i64 {
        assert_eq!(self.status, 200, "errors come with HTTP 200");
        self.json()["errcode"].as_i64().expect("errcode")
    }
}

/// What came back on the socket.
pub enum Raw {
    /// Head parsed (the body may be short if the connection was cut).
    Resp(Resp),
    /// The connection ended without a complete head (bytes received, possibly none).
    Closed(Vec<u8>),
}

/// Sends one request with `Connection: close` and reads until the server closes.
pub fn raw(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &[u8])],
    body: &[u8],
) -> Raw {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = Vec::new();
    req.extend_from_slice(
        format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n")
            .as_bytes(),
    );
    let mut has_len = false;
    for (k, v) in headers {
        has_len |=
            k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding");
        req.extend_from_slice(k.as_bytes());
        req.extend_from_slice(b": ");
        req.extend_from_slice(v);
        req.extend_from_slice(b"\r\n");
    }
    if !has_len && (method == "POST" || !body.is_empty()) {
        req.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    req.extend_from_slice(body);
    // The server may close before reading everything (a fault): ignore write errors.
    let _ = s.write_all(&req);
    let mut got = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    parse(got)
}

fn parse(got: Vec<u8>) -> Raw {
    let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Raw::Closed(got);
    };
    let head = &got[..end];
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let status_line = String::from_utf8_lossy(lines.next().unwrap()).into_owned();
    let status: u16 = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let mut headers = Vec::new();
    for line in lines {
        let colon = line.iter().position(|&b| b == b':').unwrap();
        let name = String::from_utf8(line[..colon].to_vec()).unwrap();
        let value = line[colon + 1..].trim_ascii().to_vec();
        headers.push((name, value));
    }
    let content_length = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| String::from_utf8_lossy(v).parse().unwrap());
    let body = got[end + 4..].to_vec();
    Raw::Resp(Resp {
        status,
        headers,
        body,
        content_length,
    })
}

/// Like [`raw`] but insists on a complete response.
pub fn send(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &[u8])],
    body: &[u8],
) -> Resp {
    match raw(addr, method, target, headers, body) {
        Raw::Resp(r) => {
            if let Some(n) = r.content_length {
                assert_eq!(r.body.len(), n, "complete body");
            }
            r
        }
        Raw::Closed(b) => panic!("connection closed without a response ({} bytes)", b.len()),
    }
}

pub fn get(addr: SocketAddr, target: &str) -> Resp {
    send(addr, "GET", target, &[], b"")
}

pub fn get_range(addr: SocketAddr, target: &str, range: &str) -> Resp {
    send(addr, "GET", target, &[("Range", range.as_bytes())], b"")
}

pub fn post_json(addr: SocketAddr, target: &str, json: &str) -> Resp {
    send(
        addr,
        "POST",
        target,
        &[("Content-Type", b"application/json")],
        json.as_bytes(),
    )
}

/// `multipart/form-data` with one part, written by hand. `disposition` is the whole
/// `Content-Disposition` value (raw bytes, so non-ASCII names can be sent as raw UTF-8).
pub fn form(boundary: &str, disposition: &[u8], part_type: Option<&str>, data: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
    b.extend_from_slice(b"Content-Disposition: ");
    b.extend_from_slice(disposition);
    b.extend_from_slice(b"\r\n");
    if let Some(t) = part_type {
        b.extend_from_slice(format!("Content-Type: {t}\r\n").as_bytes());
    }
    b.extend_from_slice(b"\r\n");
    b.extend_from_slice(data);
    b.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    b
}

pub const BOUNDARY: &str = "----mockTestBoundary7MA4YWxk";

/// Uploads `data` named `filename` (raw bytes) as `type`.
pub fn upload(mock: &MockHandle, token: &str, kind: &str, filename: &str, data: &[u8]) -> Resp {
    let disposition = format!("form-data; name=\"media\"; filename=\"{filename}\"");
    let body = form(
        BOUNDARY,
        disposition.as_bytes(),
        Some("application/octet-stream"),
        data,
    );
    let ct = format!("multipart/form-data; boundary={BOUNDARY}");
    send(
        mock.addr(),
        "POST",
        &format!("/cgi-bin/media/upload?access_token={token}&type={kind}"),
        &[("Content-Type", ct.as_bytes())],
        &body,
    )
}

pub fn token(mock: &MockHandle) -> String {
    let r = get(
        mock.addr(),
        "/cgi-bin/gettoken?corpid=ww-mock-corp&corpsecret=mock-secret",
    );
    assert_eq!(r.errcode(), 0);
    r.json()["access_token"].as_str().unwrap().to_owned()
}

pub fn md5_hex(data: &[u8]) -> String {
    use md5::{Digest, Md5};
    Md5::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
