//! `--ping`: sends a signed `ping` event to the webhooks that match this
//! repository, or to the one named, and prints one line per answer, so an
//! administrator can test a URL and a secret before the first push.
//!
//! Review Board answers a ping 200 without looking further (WIRE.md); the
//! signature is sent anyway so other receivers can check it. Sending is
//! `deliver.rs`'s business; a ping is never spooled or retried.

use serde_json::json;

use crate::config::{self, Config, Env};
use crate::deliver::{self, Outcome};
use crate::error::Error;
use crate::messages::{Log, Message};
use crate::proxy::Proxies;
use crate::repo::{Loaded, Repo};
use crate::settings::{Event, Settings, Webhook};
use crate::{naming, spool, wire, Report};

/// Pings the webhooks and counts the answers: a 2xx is delivered, anything
/// else failed. Having no webhook to ping is a failure too.
pub fn ping(
    repo: &Repo,
    config: &Config,
    env: &Env,
    loaded: Option<Loaded>,
    only: Option<&str>,
    log: &mut Log,
) -> Result<Report, Error> {
    let Loaded {
        path,
        source,
        settings,
    } = loaded.ok_or_else(|| config::settings_not_found(repo.settings_key(), env))?;
    log.say(Message::Settings {
        path: &path,
        source: &source,
    });
    let name = naming::resolve(repo, config, Some(&settings))?.name;
    let webhooks = chosen(&settings, &name, only)?;

    let mut report = Report::default();
    if webhooks.is_empty() {
        log.say(Message::Warning(format!(
            "no enabled webhook wants pushes to repository \"{name}\", so none was pinged; \
             `rbg-notify --check` says why"
        )));
        report.failed = 1;
        return Ok(report);
    }
    let body = serde_json::to_vec(&json!({
        "event": wire::EVENT_PING,
        "repository": name,
    }))
    .map_err(Error::Payload)?;
    let proxies = Proxies::new(&settings, env);
    for webhook in webhooks {
        let id = format!("ping-{}", spool::new_id());
        let proxy = proxies.for_url(&webhook.url);
        let timeout = webhook.timeout;
        let attempt = deliver::deliver(webhook, wire::EVENT_PING, &body, &id, timeout, proxy);
        match attempt.outcome {
            Outcome::Delivered { status } => {
                report.delivered += 1;
                log.say(Message::Pinged {
                    webhook: &webhook.id,
                    status,
                    elapsed: attempt.elapsed,
                });
            }
            Outcome::Failed(failure) => {
                report.failed += 1;
                log.say(Message::PingFailed {
                    webhook: &webhook.id,
                    reason: &failure.to_string(),
                });
            }
        }
    }
    Ok(report)
}

/// Returns the webhook named `only`, whatever it matches, or else every
/// webhook that wants pushes to `name`.
fn chosen<'a>(
    settings: &'a Settings,
    name: &str,
    only: Option<&str>,
) -> Result<Vec<&'a Webhook>, Error> {
    let Some(id) = only else {
        return Ok(settings.matching(Event::Push, name));
    };
    match settings.webhooks.iter().find(|w| w.id == id) {
        Some(webhook) => Ok(vec![webhook]),
        None => {
            let ids: Vec<String> = settings
                .webhooks
                .iter()
                .map(|w| format!("\"{}\"", w.id))
                .collect();
            Err(Error::Usage(format!(
                "--webhook: no webhook \"{id}\" in {} (its webhooks: {})",
                settings.webhooks_path.display(),
                if ids.is_empty() {
                    "none".to_string()
                } else {
                    ids.join(", ")
                }
            )))
        }
    }
}
