//! Sending what the spool holds: in order, with retries, within the run's
//! time budget, and one summary line per webhook.
//!
//! Deliveries are sent oldest first. Once one to a webhook fails, the later
//! ones to that webhook wait in the spool too, so a receiver never hears of
//! a push before an earlier one. A connection error, a timeout, a 5xx, 408
//! or 429 answer is tried again after a short pause; any other answer is an
//! administrator's error (a wrong secret, a wrong URL) and waits for
//! `--retry`. A 413 answer splits the payload in two, both spooled before
//! either is sent.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use crate::deliver::{self, Failure, Outcome};
use crate::messages::{Log, Message};
use crate::payload;
use crate::settings::{Settings, Webhook};
use crate::spool::{Header, Spool, Spooled};

/// Turns true on SIGTERM or SIGINT: no new attempt starts, and what has
/// not been delivered stays in the spool, where it already is.
static STOP: AtomicBool = AtomicBool::new(false);

/// Turns true on SIGHUP, which only means the pusher's session is gone.
static HANGUP: AtomicBool = AtomicBool::new(false);

/// Installs the signal handlers of a run: SIGTERM and SIGINT stop it at the
/// next delivery (everything in flight is already spooled), SIGHUP is
/// ignored so the pusher hanging up does not stop the deliveries.
pub fn watch_signals() -> std::io::Result<()> {
    signal_hook::flag::register(SIGTERM, &STOP)?;
    signal_hook::flag::register(SIGINT, &STOP)?;
    signal_hook::flag::register(SIGHUP, &HANGUP)?;
    Ok(())
}

/// Returns whether a signal asked the run to stop.
fn stopping() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Counts the tries of one delivery within a run.
const ATTEMPTS: usize = 3;

/// Gives the pause before each retry.
const BACKOFF: [Duration; ATTEMPTS - 1] = [Duration::from_millis(250), Duration::from_secs(1)];

/// Tells how sending the spool went.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sent {
    /// Counts the deliveries that got a 2xx answer.
    pub delivered: usize,
    /// Counts the deliveries left in the spool.
    pub waiting: usize,
    /// Counts the webhooks with a delivery that failed in this run.
    pub failed_webhooks: usize,
}

/// Sums up one webhook's deliveries for its line of output.
#[derive(Debug, Default)]
struct Tally {
    delivered_commits: usize,
    delivered: usize,
    status: u16,
    elapsed: Duration,
    waiting_commits: usize,
    waiting: usize,
    failure: Option<String>,
}

/// Sends `deliveries` (read from `spool`, in order) to their webhooks
/// until `deadline`, removing each from the spool once answered 2xx.
pub fn send_spool(
    spool: &Spool,
    mut deliveries: Vec<Spooled>,
    settings: &Settings,
    deadline: Instant,
    log: &mut Log,
) -> Sent {
    let mut tallies: Vec<(String, Tally)> = Vec::new();
    let mut sent = Sent::default();
    deliveries.reverse();
    while let Some(delivery) = deliveries.pop() {
        let name = delivery.header.webhook.clone();
        let index = match tallies.iter().position(|(id, _)| *id == name) {
            Some(i) => i,
            None => {
                tallies.push((name.clone(), Tally::default()));
                tallies.len() - 1
            }
        };
        let tally = &mut tallies[index].1;
        let webhook = settings.webhooks.iter().find(|w| w.id == name);
        let blocked = match webhook {
            None => Some("no webhook with this id in the settings file".to_string()),
            Some(w) if !w.enabled => Some("the webhook is disabled".to_string()),
            Some(_) if tally.failure.is_some() => Some(String::new()),
            Some(_) if Instant::now() >= deadline => {
                Some("the run's time budget is spent".to_string())
            }
            Some(_) => None,
        };
        let webhook = match (webhook, blocked) {
            (Some(w), None) => w,
            (_, reason) => {
                wait(tally, &delivery.header, reason);
                sent.waiting += 1;
                continue;
            }
        };

        let (outcome, elapsed) = attempt(webhook, &delivery, deadline, log);
        tally.elapsed += elapsed;
        match outcome {
            Outcome::Delivered { status } => {
                if let Err(e) = spool.remove(&delivery.path) {
                    log.say(Message::Error(&e));
                }
                tally.delivered += 1;
                tally.delivered_commits += delivery.header.commits;
                tally.status = status;
                sent.delivered += 1;
            }
            Outcome::Failed(Failure::Status { status: 413, .. }) if delivery.header.commits > 1 => {
                match split(spool, &delivery) {
                    Some(halves) => deliveries.extend(halves.into_iter().rev()),
                    None => {
                        wait(
                            tally,
                            &delivery.header,
                            Some("HTTP 413 and the payload could not be split".into()),
                        );
                        sent.waiting += 1;
                    }
                }
            }
            Outcome::Failed(failure) => {
                wait(tally, &delivery.header, Some(failure.to_string()));
                sent.waiting += 1;
            }
        }
    }

    for (webhook, tally) in &tallies {
        summarise(webhook, tally, spool, log);
        if tally.waiting > 0 {
            sent.failed_webhooks += 1;
        }
    }
    sent
}

/// Counts a delivery as waiting, keeping the first reason given.
fn wait(tally: &mut Tally, header: &Header, reason: Option<String>) {
    tally.waiting += 1;
    tally.waiting_commits += header.commits;
    if tally.failure.is_none() {
        tally.failure = reason;
    }
}

/// Tries one delivery up to `ATTEMPTS` times while the failure is worth
/// retrying and the budget lasts. Returns the last outcome and the time
/// spent.
fn attempt(
    webhook: &Webhook,
    delivery: &Spooled,
    deadline: Instant,
    log: &mut Log,
) -> (Outcome, Duration) {
    let started = Instant::now();
    let mut tries = 0;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left < Duration::from_secs(1) {
            let spent = Failure::Transport("the run's time budget is spent".to_string());
            return (Outcome::Failed(spent), started.elapsed());
        }
        let header = &delivery.header;
        let timeout = webhook.timeout.min(left);
        let result = deliver::deliver(webhook, &header.event, &delivery.body, &header.id, timeout);
        tries += 1;
        let retry = match &result.outcome {
            Outcome::Failed(failure) if tries < ATTEMPTS => retryable(failure),
            _ => false,
        };
        if !retry {
            return (result.outcome, started.elapsed());
        }
        if let Outcome::Failed(failure) = &result.outcome {
            log.say(Message::Retrying {
                webhook: &webhook.id,
                reason: &failure.to_string(),
            });
        }
        let pause = BACKOFF[tries - 1].min(deadline.saturating_duration_since(Instant::now()));
        thread::sleep(pause);
        if stopping() {
            let stopped = Failure::Transport("the run was stopped by a signal".to_string());
            return (Outcome::Failed(stopped), started.elapsed());
        }
    }
}

/// Returns whether a failure may pass by itself, so trying again soon can
/// help.
fn retryable(failure: &Failure) -> bool {
    match failure {
        Failure::Timeout(_) | Failure::Transport(_) => true,
        Failure::Status { status, .. } => *status >= 500 || *status == 408 || *status == 429,
        Failure::Redirect { .. } => false,
    }
}

/// Replaces a delivery the receiver found too large by two halves, spooled
/// before the original is removed, and returns them in order.
fn split(spool: &Spool, delivery: &Spooled) -> Option<Vec<Spooled>> {
    let halves = payload::split(&delivery.body)?;
    let mut spooled = Vec::new();
    for (n, half) in halves.into_iter().enumerate() {
        let header = Header {
            id: format!("{}.{}", delivery.header.id, n + 1),
            commits: half.commits,
            bytes: half.body.len(),
            ..delivery.header.clone()
        };
        let path = spool.write_delivery(&header, &half.body).ok()?;
        spooled.push(Spooled {
            path,
            header,
            body: half.body,
        });
    }
    spool.remove(&delivery.path).ok()?;
    Some(spooled)
}

/// Prints one webhook's line: what was delivered, and what waits.
fn summarise(webhook: &str, tally: &Tally, spool: &Spool, log: &mut Log) {
    if tally.waiting == 0 {
        log.say(Message::Delivered {
            webhook,
            commits: tally.delivered_commits,
            deliveries: tally.delivered,
            status: tally.status,
            elapsed: tally.elapsed,
        });
        return;
    }
    log.say(Message::Kept {
        webhook,
        delivered: tally.delivered_commits,
        commits: tally.waiting_commits,
        reason: tally.failure.as_deref().unwrap_or(""),
        spool: spool.dir(),
    });
}
