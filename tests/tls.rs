//! HTTPS deliveries to receivers whose certificates a private CA issued,
//! made in the test, trusted through the `ca_file` settings (issue #5:
//! "a per-webhook or global `ca_file` for a private CA").

use std::fs;
use std::process::Output;
use std::sync::Arc;

use serde_json::json;

use crate::git_push::{
    assert_delivered, assert_retried_then_kept, checked, hooked_with, push, spool_dir,
    spooled_files, SECRET,
};
use crate::util::{remote_lines, stderr, webhook, GitEnv, Receiver, Reply, TestCa};

/// Starts an HTTPS receiver that answers 200, with a certificate `ca` issued.
fn receiver(ca: &TestCa) -> Receiver {
    Receiver::start_tls(Reply::status(200), Arc::clone(&ca.server))
}

/// Runs the binary in the bare repository with `args`.
fn run(env: &GitEnv, args: &[&str]) -> Output {
    env.run_binary(args, b"", &[], env.bare())
}

#[test]
fn push_over_https_is_delivered_to_each_private_ca() {
    let (top_ca, own_ca) = (TestCa::new(), TestCa::new());
    let (top, own) = (receiver(&top_ca), receiver(&own_ca));
    let mut second = webhook("own", &own.url(), SECRET);
    second["ca_file"] = json!("own-ca.pem");
    let env = hooked_with(json!({
        "ca_file": "top-ca.pem",
        "webhooks": [webhook("rb", &top.url(), SECRET), second],
    }));
    top_ca.write(&env.root().join("top-ca.pem"));
    own_ca.write(&env.root().join("own-ca.pem"));
    env.commit("one");

    let output = push(&env, &["origin", "main"]);

    let lines = remote_lines(&output);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_delivered(&lines[0], "rb", "1 commit");
    assert_delivered(&lines[1], "own", "1 commit");
    for receiver in [&top, &own] {
        let requests = receiver.requests();
        assert_eq!(requests.len(), 1);
        checked(&requests[0], "repo1");
    }
    // Two CA files are trusted through one bundle of both.
    let bundle = env
        .bare()
        .canonicalize()
        .unwrap()
        .join("rbg-notify/ca-bundle.pem");
    let both = format!("{}{}", top_ca.pem, own_ca.pem);
    assert_eq!(fs::read_to_string(bundle).unwrap(), both);
}

#[test]
fn without_ca_file_the_certificate_is_refused_and_the_delivery_waits() {
    let ca = TestCa::new();
    let receiver = receiver(&ca);
    let env = hooked_with(json!({"webhooks": [webhook("rb", &receiver.url(), SECRET)]}));
    env.commit("one");

    let output = push(&env, &["origin", "main"]);

    assert_eq!(receiver.requests().len(), 0);
    let reason = "the receiver's certificate is not trusted (UnknownIssuer); if a private CA \
                  issued it, set \"ca_file\" to that CA's PEM file";
    assert_retried_then_kept(&env, &output, reason);
    let files = spooled_files(&spool_dir(env.bare()));
    assert_eq!(files.len(), 1, "{files:?}");
    let retried = run(&env, &["--retry", "--quiet"]);
    assert_eq!(retried.status.code(), Some(1), "{}", stderr(&retried));
}

#[test]
fn a_ca_file_that_is_missing_or_holds_no_certificate_is_a_settings_error() {
    let receiver = Receiver::ok();
    let mut hook = webhook("rb", &receiver.url(), SECRET);
    hook["ca_file"] = json!("missing.pem");
    let env = hooked_with(json!({ "webhooks": [hook.clone()] }));
    let settings = env.root().join("rbg-notify.json");

    let output = run(&env, &["--check"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output),
        format!(
            "rbg-notify: error: {}: webhook \"rb\": field \"ca_file\": cannot read {}: \
             no such file or directory\n",
            settings.display(),
            env.root().join("missing.pem").display()
        )
    );

    fs::write(env.root().join("key.pem"), "-----BEGIN PRIVATE KEY-----\n").unwrap();
    hook.as_object_mut().unwrap().remove("ca_file");
    env.write_config(&json!({ "ca_file": "key.pem", "webhooks": [hook] }));
    let output = run(&env, &["--check"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output),
        format!(
            "rbg-notify: error: {}: settings: field \"ca_file\": {} holds no PEM certificate \
             (a \"-----BEGIN CERTIFICATE-----\" line)\n",
            settings.display(),
            env.root().join("key.pem").display()
        )
    );
}
