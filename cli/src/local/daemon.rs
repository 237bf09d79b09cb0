//! keywardd as the commands see it: running or not, told to forget sessions.

use std::time::Duration;

use keyward_proto::client::Client;

/// After the key changes, drop sessions made with the old one and the revoked mark of
/// the old key (if a daemon runs).
pub fn lock_quietly() {
    let _ = Client::default_socket()
        .with_timeout(Duration::from_secs(2))
        .lock(true);
}

/// Whether a daemon of our protocol answers.
pub fn is_running() -> bool {
    Client::default_socket()
        .with_timeout(Duration::from_secs(2))
        .status()
        .is_ok_and(|s| s.protocol == keyward_proto::PROTOCOL_VERSION)
}

pub fn ensure_running() -> anyhow::Result<()> {
    keyward_proto::spawn::ensure_running(&Client::default_socket()).map_err(anyhow::Error::msg)
}
