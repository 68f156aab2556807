//! Names and values fixed by the protocols we speak: Review Board's
//! close-submitted webhook, and git's and Mercurial's VCS hooks.
//!
//! Everything that goes on the wire or is matched against another program's
//! output is spelled here once; the modules that use them own the logic.

/// Names the header that carries the event.
pub const HEADER_EVENT: &str = "X-RBG-Event";

/// Names the header that carries the lowercase hex HMAC-SHA1 signature.
pub const HEADER_SIGNATURE: &str = "X-RBG-Signature";

/// Names the header that carries the delivery id, the same on every retry
/// of one delivery, so a receiver can drop duplicates.
pub const HEADER_DELIVERY: &str = "X-RBG-Delivery";

/// Names the event sent for a push.
pub const EVENT_PUSH: &str = "push";

/// Names the event that tests a webhook; Review Board answers it 200
/// without further checks.
pub const EVENT_PING: &str = "ping";

/// Names the push event as older configuration files spell it.
pub const EVENT_PUSH_LEGACY: &str = "post-commit";

/// Gives the media type of every payload.
pub const CONTENT_TYPE_JSON: &str = "application/json";

/// Gives the `User-Agent` sent with every delivery.
pub const USER_AGENT: &str = concat!("rbg-notify/", env!("CARGO_PKG_VERSION"));

/// Names the prefix of branch refs.
pub const BRANCH_PREFIX: &str = "refs/heads/";

/// Names the prefix of tag refs.
pub const TAG_PREFIX: &str = "refs/tags/";

/// Names the environment variable that points at the configuration file.
pub const ENV_CONFIG: &str = "RBG_NOTIFY_CONFIG";

/// Names the git config key (and hgrc `[rbgateway]` key) for the
/// configuration file.
pub const GIT_KEY_CONFIG: &str = "rbgateway.config";

/// Names the git config key (and hgrc `[rbgateway]` key) for the repository
/// name.
pub const GIT_KEY_REPOSITORY: &str = "rbgateway.repository";

/// Names the hgrc section that holds `repository` and `config`, the same
/// keys as git's `rbgateway.*`.
pub const HG_SECTION: &str = "rbgateway";

/// Names the variable holding the first changeset of a changegroup
/// (`hg help config.hooks`).
pub const HG_ENV_NODE: &str = "HG_NODE";

/// Names the variable holding the last changeset of a changegroup; older
/// Mercurial does not set it.
pub const HG_ENV_NODE_LAST: &str = "HG_NODE_LAST";

/// Names Mercurial's `tip` pseudo-tag, which `hg log` lists among the tags
/// of the newest changeset but is never a tag anyone set.
pub const HG_TIP: &str = "tip";

/// Names the environment variable that moves the default settings file.
pub const ENV_DEFAULT_CONFIG: &str = "RBG_NOTIFY_DEFAULT_CONFIG";

/// Names the hgrc setting for the configuration file, as messages show it.
pub const HG_KEY_CONFIG: &str = "[rbgateway] config";

/// Gives the configuration file used when nothing else names one.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/rbg-notify/config.json";

/// Returns whether an object id is git's null id (all zeros), which on a
/// post-receive line means "created" as the old id and "deleted" as the new
/// one (githooks(5)).
pub fn is_null_id(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b == b'0')
}
