//! A webhook receiver for delivery tests: an HTTP/1.1 listener on
//! `127.0.0.1:0` that records every request and answers from a script,
//! over plain TCP or, with a certificate from `util::tls`, over TLS.
//!
//! Parsing requests is left to `util::request`, and making the pushes that
//! cause them to `util::git`.

use std::collections::VecDeque;
use std::io::{self, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rustls::{ServerConfig, ServerConnection, StreamOwned};

use super::request::{read_request, Request};

/// The close-submitted path Review Board serves for repository 1 (WIRE.md).
pub const HOOK_PATH: &str = "/repos/1/rbgateway/hooks/close-submitted/";

/// How long a connection thread waits for a silent client before giving up,
/// so a broken sender cannot pin a thread for the rest of the test run.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// One answer the receiver gives to one request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// Answers with this status and body.
    Answer { status: u16, body: Vec<u8> },
    /// Answers 301 with this `Location`.
    Redirect { location: String },
    /// Answers 301 to the request path plus a slash, as Django does.
    AppendSlash,
    /// Reads the request, then keeps the socket open and silent until the
    /// receiver is dropped.
    Hang,
    /// Reads the request, then closes the connection without answering.
    Close,
    /// Answers with this status and body one byte at a time, pausing `delay`
    /// before each byte.
    Slow {
        status: u16,
        body: Vec<u8>,
        delay: Duration,
    },
    /// Answers 200 with no `Content-Length` and a body that never ends.
    Endless,
}

impl Reply {
    /// Returns an answer with this status and an empty body.
    pub fn status(status: u16) -> Reply {
        Reply::Answer {
            status,
            body: Vec::new(),
        }
    }

    /// Returns an answer with this status and body.
    pub fn with_body(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply::Answer {
            status,
            body: body.into(),
        }
    }

    /// Returns a 301 answer pointing at `location`.
    pub fn redirect(location: impl Into<String>) -> Reply {
        Reply::Redirect {
            location: location.into(),
        }
    }
}

/// The replies a receiver gives, in arrival order: a script, then a fallback.
#[derive(Clone, Debug)]
pub struct Behaviour {
    script: VecDeque<Reply>,
    then: Reply,
}

impl Behaviour {
    /// Returns a behaviour that gives `reply` to every request.
    pub fn always(reply: Reply) -> Behaviour {
        Behaviour::script([], reply)
    }

    /// Returns a behaviour that gives the `first` replies in order, then
    /// `then` to every later request.
    pub fn script(first: impl IntoIterator<Item = Reply>, then: Reply) -> Behaviour {
        Behaviour {
            script: first.into_iter().collect(),
            then,
        }
    }

    /// Returns a behaviour that answers `status` `times` times, then 200.
    pub fn fail_then_ok(times: usize, status: u16) -> Behaviour {
        Behaviour::script(vec![Reply::status(status); times], Reply::status(200))
    }

    fn next(&mut self) -> Reply {
        self.script.pop_front().unwrap_or_else(|| self.then.clone())
    }
}

impl From<Reply> for Behaviour {
    fn from(reply: Reply) -> Behaviour {
        Behaviour::always(reply)
    }
}

/// Returns a hook URL on 127.0.0.1 where nothing listens.
pub fn dead_url() -> String {
    // The port was free a moment ago; another test could take it, but the
    // kernel hands out ephemeral ports in turn, so a reuse this soon is rare.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("listener has an address");
    drop(listener);
    format!("http://{addr}{HOOK_PATH}")
}

/// State shared by the accept loop, the connection threads and the tests.
struct Shared {
    state: Mutex<State>,
    arrived: Condvar,
    stop: AtomicBool,
    /// Sockets under `Reply::Hang`; dropping them is what ends the hang.
    hung: Mutex<Vec<TcpStream>>,
    /// Makes every connection TLS with this certificate.
    tls: Option<Arc<ServerConfig>>,
}

struct State {
    requests: Vec<Request>,
    behaviour: Behaviour,
}

/// An HTTP receiver on a thread; dropping it stops the listener.
pub struct Receiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl Receiver {
    /// Starts a receiver on `127.0.0.1:0` that answers as `behaviour` says.
    pub fn start(behaviour: impl Into<Behaviour>) -> Receiver {
        Receiver::launch(behaviour.into(), None)
    }

    /// Starts an HTTPS receiver with the certificate `tls` holds; it gives
    /// only `Reply::Answer` replies.
    pub fn start_tls(behaviour: impl Into<Behaviour>, tls: Arc<ServerConfig>) -> Receiver {
        Receiver::launch(behaviour.into(), Some(tls))
    }

    fn launch(behaviour: Behaviour, tls: Option<Arc<ServerConfig>>) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("listener has an address");
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                requests: Vec::new(),
                behaviour,
            }),
            arrived: Condvar::new(),
            stop: AtomicBool::new(false),
            hung: Mutex::new(Vec::new()),
            tls,
        });

        let accept_shared = Arc::clone(&shared);
        let accept = thread::spawn(move || accept_loop(&listener, &accept_shared));
        Receiver {
            addr,
            shared,
            accept: Some(accept),
        }
    }

    /// Starts a receiver that answers 200 to every request.
    pub fn ok() -> Receiver {
        Receiver::start(Reply::status(200))
    }

    /// Returns the socket address the receiver listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Returns the hook URL, ending with a slash as Review Board's does.
    pub fn url(&self) -> String {
        let scheme = match self.shared.tls {
            Some(_) => "https",
            None => "http",
        };
        format!("{scheme}://{}{HOOK_PATH}", self.addr)
    }

    /// Returns the hook URL without its trailing slash.
    pub fn url_without_slash(&self) -> String {
        let url = self.url();
        url.trim_end_matches('/').to_string()
    }

    /// Returns a copy of every request recorded so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.shared.state).requests.clone()
    }

    /// Waits until `n` requests have arrived or `timeout` passes, then
    /// returns the requests recorded so far.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Request> {
        let state = lock(&self.shared.state);
        let (state, _) = self
            .shared
            .arrived
            .wait_timeout_while(state, timeout, |state| state.requests.len() < n)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        state.requests.clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        lock(&self.shared.hung).clear();

        // The accept loop blocks in accept(); a connection of our own wakes
        // it so it sees the stop flag. If that fails, leave the thread be
        // rather than hang the test in join().
        let woken = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)).is_ok();
        if let Some(accept) = self.accept.take().filter(|_| woken) {
            let _ = accept.join();
        }
    }
}

/// Locks `mutex`, ignoring poisoning: a panicking connection thread must not
/// turn every later assertion into a second, confusing panic.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let shared = Arc::clone(shared);
        // One thread per connection, so a hung or slow one blocks nothing.
        thread::spawn(move || {
            let _ = serve(stream, &shared);
        });
    }
}

fn serve(stream: TcpStream, shared: &Shared) -> io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    stream.set_nodelay(true)?;
    if let Some(tls) = &shared.tls {
        return serve_tls(stream, shared, Arc::clone(tls));
    }
    let mut reader = BufReader::new(stream.try_clone()?);
    let Some(request) = read_request(&mut reader)? else {
        return Ok(());
    };

    let path = request.path.clone();
    let reply = record(shared, request);
    answer(stream, shared, &path, reply)
}

/// Serves one TLS connection; a client that refuses the certificate ends
/// it in the handshake, before any request is recorded.
fn serve_tls(stream: TcpStream, shared: &Shared, tls: Arc<ServerConfig>) -> io::Result<()> {
    let connection = ServerConnection::new(tls).map_err(io::Error::other)?;
    let mut reader = BufReader::new(StreamOwned::new(connection, stream));
    let Some(request) = read_request(&mut reader)? else {
        return Ok(());
    };
    let Reply::Answer { status, body } = record(shared, request) else {
        panic!("an HTTPS receiver gives only Reply::Answer replies");
    };
    let mut stream = reader.into_inner();
    stream.write_all(&response(status, &[], &body))?;
    stream.conn.send_close_notify();
    stream.flush()?;
    // Waits for the client to hang up, so the answer is not cut short.
    let _ = stream.read(&mut [0; 1]);
    Ok(())
}

/// Records `request` and picks its reply under one lock, so the n-th request
/// recorded is the one that gets the n-th scripted reply.
fn record(shared: &Shared, request: Request) -> Reply {
    let mut state = lock(&shared.state);
    state.requests.push(request);
    let reply = state.behaviour.next();
    shared.arrived.notify_all();
    reply
}

fn answer(mut stream: TcpStream, shared: &Shared, path: &str, reply: Reply) -> io::Result<()> {
    match reply {
        Reply::Answer { status, body } => stream.write_all(&response(status, &[], &body)),
        Reply::Redirect { location } => {
            stream.write_all(&response(301, &[("Location", &location)], b""))
        }
        Reply::AppendSlash => {
            let location = format!("{path}/");
            stream.write_all(&response(301, &[("Location", &location)], b""))
        }
        Reply::Hang => {
            // Checked under the lock `Drop` takes to clear the list, so a
            // socket is never parked after the receiver has gone.
            let mut hung = lock(&shared.hung);
            if !shared.stop.load(Ordering::SeqCst) {
                hung.push(stream);
            }
            Ok(())
        }
        Reply::Close => stream.shutdown(std::net::Shutdown::Both),
        Reply::Slow {
            status,
            body,
            delay,
        } => {
            for byte in response(status, &[], &body) {
                thread::sleep(delay);
                if shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                stream.write_all(&[byte])?;
            }
            Ok(())
        }
        Reply::Endless => {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n";
            stream.write_all(head.as_bytes())?;
            let chunk = [b'x'; 16 * 1024];
            // Ends when the client hangs up (a write error) or the receiver
            // is dropped.
            while !shared.stop.load(Ordering::SeqCst) {
                stream.write_all(&chunk)?;
            }
            Ok(())
        }
    }
}

fn response(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        413 => "Request Entity Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}
