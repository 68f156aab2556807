//! Sending what the spool holds: in order, with retries, within the run's
//! time budget, and one summary line per webhook.
//!
//! Deliveries are sent oldest first. Once one to a webhook fails, the later
//! ones to that webhook wait in the spool too, so a receiver never hears of
//! a push before an earlier one. A connection error, a timeout, a 5xx, 408
//! or 429 answer is tried again after a short pause; every webhook gets its
//! first try before any retry, so one dead receiver cannot spend the whole
//! time budget of the others. Any other answer is an administrator's error
//! (a wrong secret, a wrong URL): the delivery is put on hold, and only
//! `--retry` sends it again. A 413 answer splits the payload in two, both
//! spooled before either is sent.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use crate::deliver::{self, Failure, Outcome};
use crate::messages::{Log, Message};
use crate::payload;
use crate::proxy::Proxies;
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

/// Gives the pause before each round of retries.
const BACKOFF: [Duration; ATTEMPTS - 1] = [Duration::from_millis(250), Duration::from_secs(1)];

/// Gives the least budget worth starting an attempt with: minreq counts its
/// timeout in whole seconds.
const MIN_ATTEMPT: Duration = Duration::from_secs(1);

/// Says how a run sends.
#[derive(Debug)]
pub struct Sending<'a> {
    /// Gives the end of the run's time budget.
    pub deadline: Instant,
    /// Says deliveries on hold are sent too (for `--retry`).
    pub held_too: bool,
    /// Chooses the proxy of each webhook.
    pub proxies: &'a Proxies,
}

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

/// Holds one webhook's deliveries, in order, and how they went.
#[derive(Debug, Default)]
struct Queue {
    webhook: String,
    items: VecDeque<Spooled>,
    /// Says the head failed in a way worth another round.
    retry: bool,
    /// Gives the reason the rest waits, once it is decided.
    failure: Option<String>,
    /// Says the head is on hold until `--retry`.
    held: bool,
    delivered_commits: usize,
    delivered: usize,
    status: u16,
    elapsed: Duration,
}

/// Sends `deliveries` (read from `spool`, in order) to their webhooks as
/// `how` says, removing each from the spool once answered 2xx.
pub fn send_spool(
    spool: &Spool,
    deliveries: Vec<Spooled>,
    settings: &Settings,
    how: &Sending,
    log: &mut Log,
) -> Sent {
    let held_too = how.held_too;
    let mut queues: Vec<Queue> = Vec::new();
    for delivery in deliveries {
        match queues
            .iter_mut()
            .find(|q| q.webhook == delivery.header.webhook)
        {
            Some(queue) => queue.items.push_back(delivery),
            None => queues.push(Queue {
                webhook: delivery.header.webhook.clone(),
                items: VecDeque::from([delivery]),
                ..Queue::default()
            }),
        }
    }
    for queue in &mut queues {
        queue.failure = blocked(queue, settings, held_too);
        queue.held = queue.items.front().is_some_and(|d| d.held.is_some());
    }

    for round in 0..ATTEMPTS {
        if round > 0 {
            if !queues.iter().any(|q| q.retry) {
                break;
            }
            thread::sleep(BACKOFF[round - 1]);
        }
        for queue in queues.iter_mut().filter(|q| q.failure.is_none()) {
            let Some(webhook) = settings.webhooks.iter().find(|w| w.id == queue.webhook) else {
                continue;
            };
            send_queue(spool, queue, webhook, how, round, log);
        }
    }

    let mut sent = Sent::default();
    for queue in &queues {
        summarise(queue, spool, log);
        sent.delivered += queue.delivered;
        sent.waiting += queue.items.len();
        if !queue.items.is_empty() {
            sent.failed_webhooks += 1;
        }
    }
    sent
}

/// Returns why a webhook's deliveries cannot be sent at all in this run.
fn blocked(queue: &Queue, settings: &Settings, held_too: bool) -> Option<String> {
    let webhook = settings.webhooks.iter().find(|w| w.id == queue.webhook);
    match webhook {
        None => Some("no webhook with this id in the settings file".to_string()),
        Some(w) if !w.enabled => Some("the webhook is disabled".to_string()),
        _ => match queue.items.front().and_then(|d| d.held.as_ref()) {
            Some(reason) if !held_too => Some(format!("held since the receiver answered {reason}")),
            _ => None,
        },
    }
}

/// Sends a webhook's deliveries from the head on, until one fails. A
/// failure worth retrying leaves the queue for the next round; any other
/// decides why the rest waits.
fn send_queue(
    spool: &Spool,
    queue: &mut Queue,
    webhook: &Webhook,
    how: &Sending,
    round: usize,
    log: &mut Log,
) {
    let (deadline, proxies) = (how.deadline, how.proxies);
    queue.retry = false;
    while let Some(delivery) = queue.items.pop_front() {
        queue.held = false;
        let left = deadline.saturating_duration_since(Instant::now());
        let stop = match () {
            _ if stopping() => Some("the run was stopped by a signal"),
            _ if left < MIN_ATTEMPT => Some("the run's time budget is spent"),
            _ => None,
        };
        if let Some(reason) = stop {
            queue.items.push_front(delivery);
            queue.failure.get_or_insert_with(|| reason.to_string());
            return;
        }

        let header = &delivery.header;
        let timeout = webhook.timeout.min(left);
        let proxy = proxies.for_url(&webhook.url);
        let body = &delivery.body;
        let attempt = deliver::deliver(webhook, &header.event, body, &header.id, timeout, proxy);
        queue.elapsed += attempt.elapsed;
        let failure = match attempt.outcome {
            Outcome::Delivered { status } => {
                if let Err(e) = spool.remove_delivery(&delivery) {
                    log.say(Message::Error(&e));
                }
                queue.delivered += 1;
                queue.delivered_commits += delivery.header.commits;
                queue.status = status;
                continue;
            }
            Outcome::Failed(Failure::Status { status: 413, .. }) if header.commits > 1 => {
                if let Some(halves) = split(spool, &delivery) {
                    for half in halves.into_iter().rev() {
                        queue.items.push_front(half);
                    }
                    continue;
                }
                "HTTP 413 and the payload could not be split".to_string()
            }
            Outcome::Failed(failure) => {
                let reason = failure.to_string();
                // Another round only when the budget still covers the pause
                // and a try after it; no "trying again" line may promise an
                // attempt that never comes.
                let left = deadline.saturating_duration_since(Instant::now());
                let pause = BACKOFF.get(round).copied();
                let room = pause.is_some_and(|pause| left >= pause + MIN_ATTEMPT);
                if retryable(&failure) && room && !stopping() {
                    log.say(Message::Retrying {
                        webhook: &webhook.id,
                        reason: &reason,
                    });
                    queue.retry = true;
                } else if !retryable(&failure) {
                    hold(spool, &delivery, &reason, log);
                    queue.held = true;
                }
                reason
            }
        };
        queue.items.push_front(delivery);
        if !queue.retry {
            queue.failure = Some(failure);
        }
        return;
    }
}

/// Puts a delivery the receiver refused on hold until `--retry`.
fn hold(spool: &Spool, delivery: &Spooled, reason: &str, log: &mut Log) {
    if let Err(e) = spool.hold(delivery, reason) {
        log.say(Message::Error(&e));
    }
}

/// Returns whether a failure may pass by itself, so trying again soon can
/// help.
fn retryable(failure: &Failure) -> bool {
    match failure {
        Failure::Timeout(_) | Failure::Transport(_) => true,
        Failure::Status { status, .. } => *status >= 500 || *status == 408 || *status == 429,
        Failure::Redirect { .. } | Failure::Setup(_) => false,
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
            held: None,
        });
    }
    spool.remove_delivery(delivery).ok()?;
    Some(spooled)
}

/// Prints one webhook's line: what was delivered, and what waits.
fn summarise(queue: &Queue, spool: &Spool, log: &mut Log) {
    if queue.items.is_empty() {
        log.say(Message::Delivered {
            webhook: &queue.webhook,
            commits: queue.delivered_commits,
            deliveries: queue.delivered,
            status: queue.status,
            elapsed: queue.elapsed,
        });
        return;
    }
    let waiting: usize = queue.items.iter().map(|d| d.header.commits).sum();
    log.say(Message::Kept {
        webhook: &queue.webhook,
        delivered: queue.delivered_commits,
        commits: waiting,
        reason: queue.failure.as_deref().unwrap_or(""),
        spool: spool.dir(),
        held: queue.held,
    });
}
