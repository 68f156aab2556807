//! Reading the side of HTTP a webhook receiver sees: one request off a
//! socket, parsed into a `Request` that tests can inspect and verify.
//!
//! Choosing and writing answers is left to `util::receiver`.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::time::Instant;

use hmac::{Hmac, Mac};
use sha1::Sha1;

/// The signature header a receiver checks (WIRE.md).
const SIGNATURE_HEADER: &str = "X-RBG-Signature";

/// Anything bigger is not a payload we would send; Review Board refuses
/// bodies over 2.5 MiB anyway.
const MAX_BODY: usize = 64 << 20;

/// One HTTP request as the receiver read it off the socket.
#[derive(Clone, Debug)]
pub struct Request {
    /// The method, e.g. `POST`.
    pub method: String,
    /// The request target, e.g. `/repos/1/rbgateway/hooks/close-submitted/`.
    pub path: String,
    /// Every header line in order, with the name as the client spelled it.
    pub headers: Vec<(String, String)>,
    /// The body, with any chunked transfer coding removed.
    pub body: Vec<u8>,
    /// When the whole request had been read.
    pub received: Instant,
}

impl Request {
    /// Returns the first header called `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Parses the body as JSON, panicking if it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|err| {
            let body = String::from_utf8_lossy(&self.body);
            panic!("request body is not JSON ({err}): {body}")
        })
    }

    /// Checks `X-RBG-Signature` against the HMAC-SHA1 of the body bytes.
    pub fn verify_signature(&self, secret: &str) -> bool {
        self.header(SIGNATURE_HEADER) == Some(sign(secret, &self.body).as_str())
    }

    /// Returns `commits[].id` from the JSON body, panicking on another shape.
    pub fn commit_ids(&self) -> Vec<String> {
        let json = self.json();
        let commits = json["commits"]
            .as_array()
            .unwrap_or_else(|| panic!("payload has no commits array: {json}"));
        let id = |commit: &serde_json::Value| {
            let id = commit["id"].as_str();
            id.unwrap_or_else(|| panic!("commit has no string id: {commit}"))
                .to_string()
        };
        commits.iter().map(id).collect()
    }
}

/// Computes the lowercase hex HMAC-SHA1 of `body` keyed with `secret`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Reads one request off the connection `reader` buffers; `None` means the
/// client sent nothing (as the receiver's own wake-up connection does).
pub(super) fn read_request<S: Read + Write>(
    reader: &mut BufReader<S>,
) -> io::Result<Option<Request>> {
    let line = read_line(reader)?;
    if line.is_empty() {
        return Ok(None);
    }
    let mut parts = line.split(' ');
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();

    let mut headers = Vec::new();
    loop {
        let line = read_line(reader)?;
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').ok_or_else(|| invalid("bad header"))?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let mut request = Request {
        method,
        path,
        headers,
        body: Vec::new(),
        received: Instant::now(),
    };

    // curl and some libraries wait for this before sending a large body.
    let expect = request.header("Expect");
    if expect.is_some_and(|value| value.eq_ignore_ascii_case("100-continue")) {
        reader
            .get_mut()
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    request.body = read_body(reader, &request)?;
    request.received = Instant::now();
    Ok(Some(request))
}

fn read_body(reader: &mut impl BufRead, request: &Request) -> io::Result<Vec<u8>> {
    let chunked = request
        .header("Transfer-Encoding")
        .is_some_and(|value| value.to_ascii_lowercase().contains("chunked"));
    if chunked {
        return read_chunked(reader);
    }
    let length = match request.header("Content-Length") {
        Some(value) => value.parse().map_err(|_| invalid("bad Content-Length"))?,
        None => 0,
    };
    read_exact(reader, length)
}

/// Decodes a chunked body (RFC 9112 section 7.1), dropping any trailers.
fn read_chunked(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = read_line(reader)?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16).map_err(|_| invalid("bad chunk size"))?;
        if size == 0 {
            while !read_line(reader)?.is_empty() {}
            return Ok(body);
        }
        if body.len() + size > MAX_BODY {
            return Err(invalid("body too large"));
        }
        body.extend(read_exact(reader, size)?);
        if !read_line(reader)?.is_empty() {
            return Err(invalid("chunk not followed by CRLF"));
        }
    }
}

fn read_exact(reader: &mut impl Read, length: usize) -> io::Result<Vec<u8>> {
    if length > MAX_BODY {
        return Err(invalid("body too large"));
    }
    let mut buf = vec![0; length];
    reader.read_exact(&mut buf)?;
    Ok(buf)
}

/// Reads a line without its CRLF; an empty string also means end of stream.
fn read_line(reader: &mut impl BufRead) -> io::Result<String> {
    let mut line = Vec::new();
    Read::take(&mut *reader, 64 * 1024).read_until(b'\n', &mut line)?;
    while line
        .last()
        .is_some_and(|&byte| byte == b'\n' || byte == b'\r')
    {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| invalid("header is not UTF-8"))
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_string())
}
