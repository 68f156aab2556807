//! An HTTP proxy on 127.0.0.1 that tunnels with CONNECT, as squid does for
//! https, and records the targets it was asked for.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

/// Runs a CONNECT proxy until the test ends.
pub struct ConnectProxy {
    addr: SocketAddr,
    targets: Arc<Mutex<Vec<String>>>,
}

impl ConnectProxy {
    /// Starts the proxy on a free port.
    pub fn start() -> ConnectProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let targets = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&targets);
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let seen = Arc::clone(&seen);
                thread::spawn(move || {
                    let _ = tunnel(client, &seen);
                });
            }
        });
        ConnectProxy { addr, targets }
    }

    /// Returns the proxy's URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Returns the `host:port` of every CONNECT received, in order.
    pub fn targets(&self) -> Vec<String> {
        self.targets.lock().expect("targets lock").clone()
    }
}

/// Serves one client: reads its CONNECT, opens the tunnel, copies both ways.
fn tunnel(client: TcpStream, seen: &Mutex<Vec<String>>) -> io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let target = match line.split_whitespace().collect::<Vec<_>>()[..] {
        ["CONNECT", target, _] => target.to_string(),
        _ => return Ok(()),
    };
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" {
            break;
        }
    }
    seen.lock().expect("targets lock").push(target.clone());
    let upstream = TcpStream::connect(&target)?;
    let mut answer = client.try_clone()?;
    answer.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;

    let (mut up_read, mut up_write) = (upstream.try_clone()?, upstream);
    let mut down = client;
    let copier = thread::spawn(move || {
        let _ = io::copy(&mut up_read, &mut down);
        let _ = down.shutdown(Shutdown::Write);
    });
    // Bytes the reader buffered past the CONNECT head belong upstream.
    up_write.write_all(reader.buffer())?;
    let mut rest = reader.into_inner();
    let _ = io::copy(&mut rest, &mut up_write);
    let _ = up_write.shutdown(Shutdown::Write);
    let _ = copier.join();
    Ok(())
}
