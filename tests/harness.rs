//! Self-tests of the helpers in `util`: the receiver speaks real HTTP over
//! TCP, and the git fixtures make commits real git sees.
//!
//! They never run the `rbg-notify` binary, so they hold while it is being
//! written; the tests of the binary itself live in other modules.

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::{
    assert_success, dead_url, isolate, path_str, remote_lines, run_with_timeout, sign, webhook,
    Behaviour, GitEnv, Receiver, Reply, Request, HOOK_PATH, ZERO_ID,
};

const WAIT: Duration = Duration::from_secs(5);

/// Opens a connection to `receiver` and sends `raw` as is.
fn connect(receiver: &Receiver, raw: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(receiver.addr()).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.write_all(raw).unwrap();
    stream
}

/// Sends a POST with `body` and returns the whole response as text.
fn post(receiver: &Receiver, body: &str) -> String {
    let raw = format!(
        "POST {HOOK_PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream = connect(receiver, raw.as_bytes());
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// Reads a POST's answer until `limit` passes, returning the bytes and
/// whether the server closed the connection.
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(err) if err.kind() == ErrorKind::ConnectionReset => return (got, true),
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return (got, false)
            }
            Err(err) => panic!("read failed: {err}"),
        }
    }
}

#[test]
fn receiver_records_a_raw_post() {
    let receiver = Receiver::ok();
    let body = r#"{"commits":[{"id":"abc"},{"id":"def"}]}"#;
    let raw = format!(
        "POST {HOOK_PATH} HTTP/1.1\r\nHost: x\r\nx-rbg-event: push\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream = connect(&receiver, raw.as_bytes());
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();

    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.contains("\r\nContent-Length: 0\r\n"), "{response}");
    assert!(response.contains("\r\nConnection: close\r\n"), "{response}");
    let requests = receiver.wait_for(1, WAIT);
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, HOOK_PATH);
    assert_eq!(request.header("X-RBG-Event"), Some("push"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("X-Missing"), None);
    assert_eq!(request.body, body.as_bytes());
    assert_eq!(request.commit_ids(), ["abc", "def"]);
}

#[test]
fn receiver_decodes_a_chunked_body() {
    let receiver = Receiver::ok();
    let raw = "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
               4\r\n{\"a\"\r\n5;ext=1\r\n: 12}\r\n0\r\nTrailer: y\r\n\r\n";
    let response = {
        let mut stream = connect(&receiver, raw.as_bytes());
        read_until_closed(&mut stream, WAIT).0
    };

    assert!(response.starts_with(b"HTTP/1.1 200 "));
    let request = &receiver.wait_for(1, WAIT)[0];
    assert_eq!(request.body, b"{\"a\": 12}");
    assert_eq!(request.json()["a"], 12);
}

#[test]
fn receiver_follows_its_script_in_arrival_order() {
    let receiver = Receiver::start(Behaviour::fail_then_ok(2, 500));

    let statuses: Vec<String> = (0..4)
        .map(|i| post(&receiver, &format!("{{\"n\":{i}}}")))
        .map(|response| response.lines().next().unwrap().to_string())
        .collect();

    assert_eq!(
        statuses,
        [
            "HTTP/1.1 500 Internal Server Error",
            "HTTP/1.1 500 Internal Server Error",
            "HTTP/1.1 200 OK",
            "HTTP/1.1 200 OK",
        ]
    );
    let bodies: Vec<_> = receiver.requests().iter().map(Request::json).collect();
    assert_eq!(bodies.len(), 4);
    assert_eq!(bodies[3]["n"], 3);
}

#[test]
fn receiver_answers_with_a_body_and_redirects() {
    let body = Reply::with_body(400, "Bad signature.");
    let script = [body, Reply::redirect("http://example.com/")];
    let receiver = Receiver::start(Behaviour::script(script, Reply::AppendSlash));

    let bad = post(&receiver, "{}");
    assert!(bad.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{bad}");
    assert!(bad.ends_with("\r\nContent-Length: 14\r\nConnection: close\r\n\r\nBad signature."));
    let moved = post(&receiver, "{}");
    assert!(moved.starts_with("HTTP/1.1 301 "), "{moved}");
    assert!(
        moved.contains("\r\nLocation: http://example.com/\r\n"),
        "{moved}"
    );

    // As Django answers a hook URL that lacks its trailing slash.
    let raw = "POST /repos/1/rbgateway/hooks/close-submitted HTTP/1.1\r\n\r\n";
    let mut stream = connect(&receiver, raw.as_bytes());
    let mut slash = String::new();
    stream.read_to_string(&mut slash).unwrap();
    assert!(
        slash.contains(&format!("\r\nLocation: {HOOK_PATH}\r\n")),
        "{slash}"
    );
}

#[test]
fn receiver_hang_answers_nothing_until_dropped() {
    let receiver = Receiver::start(Reply::Hang);
    let mut stream = connect(
        &receiver,
        b"POST /x HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
    );

    assert_eq!(receiver.wait_for(1, WAIT)[0].body, b"{}");
    let (got, closed) = read_until_closed(&mut stream, Duration::from_millis(300));
    assert!(
        got.is_empty() && !closed,
        "hang sent {got:?}, closed: {closed}"
    );

    // A second connection is served while the first one hangs.
    let _second = connect(&receiver, b"GET /y HTTP/1.1\r\n\r\n");
    assert_eq!(receiver.wait_for(2, WAIT)[1].path, "/y");

    drop(receiver);
    let (got, closed) = read_until_closed(&mut stream, WAIT);
    assert!(
        got.is_empty() && closed,
        "after drop: {got:?}, closed: {closed}"
    );
}

#[test]
fn receiver_close_hangs_up_without_answering() {
    let receiver = Receiver::start(Reply::Close);
    let mut stream = connect(
        &receiver,
        b"POST /x HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
    );

    let (got, closed) = read_until_closed(&mut stream, WAIT);
    assert!(
        got.is_empty() && closed,
        "close sent {got:?}, closed: {closed}"
    );
    assert_eq!(receiver.requests().len(), 1);
}

#[test]
fn receiver_slow_sends_one_byte_at_a_time() {
    let delay = Duration::from_millis(2);
    let slow = Reply::Slow {
        status: 200,
        body: b"ok".to_vec(),
        delay,
    };
    let receiver = Receiver::start(slow);

    let started = Instant::now();
    let response = post(&receiver, "{}");
    let elapsed = started.elapsed();

    assert!(response.ends_with("\r\n\r\nok"), "{response}");
    assert!(elapsed >= delay * response.len() as u32, "took {elapsed:?}");
}

#[test]
fn receiver_endless_body_never_ends() {
    let receiver = Receiver::start(Reply::Endless);
    let mut stream = connect(&receiver, b"POST /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n");

    let mut got = vec![0; 4 << 20];
    stream.read_exact(&mut got).unwrap();
    assert!(got.starts_with(b"HTTP/1.1 200 OK\r\n"));
    assert!(got.ends_with(b"xxxx"));
    // Dropping both ends must not hang the test binary.
    drop(stream);
    drop(receiver);
}

#[test]
fn nothing_listens_on_dead_url() {
    let url = dead_url();
    let addr = url
        .strip_prefix("http://")
        .and_then(|rest| rest.strip_suffix(HOOK_PATH))
        .unwrap();

    let err = TcpStream::connect(addr).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
}

#[test]
fn signatures_match_rfc_2202_case_1() {
    let key = "\x0b".repeat(20);
    let signature = sign(&key, b"Hi There");
    assert_eq!(signature, "b617318655057264e28bc0b6fb378c8ef146be00");

    let request = |value: &str| Request {
        method: "POST".into(),
        path: HOOK_PATH.into(),
        headers: vec![("x-rbg-signature".into(), value.into())],
        body: b"Hi There".to_vec(),
        received: Instant::now(),
    };
    assert!(request(&signature).verify_signature(&key));
    assert!(!request(&signature.to_uppercase()).verify_signature(&key));
    assert!(!request(&signature).verify_signature("other"));
}

#[test]
fn fixtures_make_commits_git_sees_after_a_push() {
    let env = GitEnv::new();
    let first = env.commit("first");
    env.branch("topic");
    let second = env.commit("second");
    env.checkout("topic");
    let side = env.commit("side");
    env.checkout("main");
    let merge = env.merge("topic");
    let light = env.tag("v1");
    let annotated = env.annotated_tag("v2", "release 2");

    assert_success(&env.push(&["--quiet", "origin", "main", "topic", "--tags"], &[]));
    let order = env.rev_list(&["--topo-order", "--reverse", "main"]);
    assert_eq!(order.len(), 4);
    assert_eq!(
        (order[0].as_str(), order[3].as_str()),
        (first.as_str(), merge.as_str())
    );
    assert!(order.contains(&second) && order.contains(&side));
    assert_eq!(
        env.rev_list(&["--parents", "-n1", "main"])[0]
            .split(' ')
            .count(),
        3
    );
    assert_eq!(light, merge);
    assert_ne!(annotated, merge);
    assert_eq!(env.rev_list(&["-n1", "v2"]), [merge]);

    env.reset_hard(&first);
    assert_success(&env.push(&["--quiet", "--force", "origin", "main"], &[]));
    assert_eq!(env.rev_list(&["main"]), [first]);
}

#[test]
fn fixtures_give_the_same_ids_every_time() {
    let make = |env: &GitEnv| [env.commit("one"), env.commit("two")];
    let (left, right) = (GitEnv::new(), GitEnv::with_name("other"));

    assert_eq!(make(&left), make(&right));
    assert!(right.bare().ends_with("srv/other.git"));
}

#[test]
fn fixtures_write_exact_message_bytes() {
    let env = GitEnv::new();
    let latin1 = env.commit_bytes(b"caf\xe9\n", Some("ISO-8859-1"));
    let verbatim = env.commit_bytes(b"exact  \n\n", None);
    let object = |id: &str| {
        let mut cmd = env.git_command(env.work());
        let output = run_with_timeout(cmd.args(["cat-file", "commit", id]), b"", WAIT);
        assert_success(&output);
        output.stdout
    };

    let latin1 = object(&latin1);
    assert!(
        latin1.ends_with(b"\nencoding ISO-8859-1\n\ncaf\xe9\n"),
        "{latin1:?}"
    );
    let verbatim = object(&verbatim);
    assert!(verbatim.ends_with(b"+0000\n\nexact  \n\n"), "{verbatim:?}");
}

/// Writes a shell script standing in for the binary: it saves its stdin and
/// `RBG_NOTIFY_CONFIG`, and prints to both streams.
fn fake_hook(dir: &Path) -> PathBuf {
    let script = dir.join("fake-hook.sh");
    let text = format!(
        "#!/bin/sh\ncat > '{0}/stdin'\nprintf '%s' \"$RBG_NOTIFY_CONFIG\" > '{0}/env'\n\
         echo 'to stdout'\necho 'rbg-notify: to stderr' >&2\n",
        dir.display()
    );
    fs::write(&script, text).unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    script
}

#[test]
fn installed_hook_gets_ref_updates_and_env() {
    let env = GitEnv::new();
    env.install_hook(&fake_hook(env.root()));
    let id = env.commit("first");
    let config = env.write_config(&serde_json::json!({
        "webhooks": [webhook("rb", "http://127.0.0.1:9/", "s3cret")],
    }));

    let output = env.push(
        &["origin", "main"],
        &[("RBG_NOTIFY_CONFIG", path_str(&config))],
    );
    assert_success(&output);

    let stdin = fs::read_to_string(env.root().join("stdin")).unwrap();
    assert_eq!(stdin, format!("{ZERO_ID} {id} refs/heads/main\n"));
    let seen = fs::read_to_string(env.root().join("env")).unwrap();
    assert_eq!(seen, path_str(&config));
    assert_eq!(
        remote_lines(&output),
        ["to stdout", "rbg-notify: to stderr"]
    );
    let written: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&config).unwrap()).unwrap();
    assert_eq!(written["webhooks"][0]["repositories"][0], "repo1");

    // Git refuses to delete the bare repository's HEAD branch, so delete
    // another one.
    assert_success(&env.push(&["--quiet", "origin", "main:gone"], &[]));
    assert_success(&env.push(&["--quiet", "origin", ":gone"], &[]));
    let stdin = fs::read_to_string(env.root().join("stdin")).unwrap();
    assert_eq!(stdin, format!("{id} {ZERO_ID} refs/heads/gone\n"));
}

#[test]
#[should_panic(expected = "still running after")]
fn timeout_guard_kills_a_stuck_command() {
    let mut cmd = Command::new("sleep");
    isolate(&mut cmd, Path::new("/"), "1700000000 +0000");
    run_with_timeout(cmd.arg("10"), b"", Duration::from_millis(100));
}
