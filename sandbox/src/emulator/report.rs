//! What moto's IAM lacks for an audit: the root user's key and MFA in the account
//! summary and in the credential report's `<root_account>` row, every key's last use
//! (the emulator sees every request), and keys and users made old on purpose (a test
//! cannot wait 400 days).

use std::time::{Duration, SystemTime};

use bytes::Bytes;

use super::state::Emulator;
use super::upstream::Answer;

impl Emulator {
    /// Whether the root user has an MFA device (AWS's default: no).
    pub fn set_root_mfa(&self, on: bool) {
        self.inner().root_mfa = on;
    }

    /// Deletes the root user's access keys: requests signed with them are refused.
    pub fn delete_root_keys(&self) {
        let mut st = self.inner();
        let keys: Vec<String> = st.root_keys.drain().map(|(k, _)| k).collect();
        st.rejected_keys.extend(keys);
    }

    /// Makes `user` and its keys (and their last use) `by` older.
    pub fn backdate(&self, user: &str, by: Duration) {
        self.inner().backdated.insert(user.to_owned(), by);
    }

    /// A long-term key of `user` signed a request now.
    pub(crate) fn note_use(&self, user: &str) {
        let now = self.now();
        self.inner().last_used.insert(user.to_owned(), now);
    }
}

fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%Y-%m-%dT%H:%M:%S+00:00")
        .to_string()
}

fn shift(value: &str, by: Duration) -> String {
    chrono::DateTime::parse_from_rfc3339(value).map_or_else(
        |_| value.to_owned(),
        |d| rfc3339(SystemTime::from(d.with_timezone(&chrono::Utc)) - by),
    )
}

/// moto's CSV with the root row added, last use filled in, and old users aged.
fn patch_report(emu: &Emulator, csv: &str) -> String {
    let mut lines = csv.lines();
    let Some(header) = lines.next() else {
        return csv.to_owned();
    };
    let cols: Vec<&str> = header.split(',').collect();
    let col = |name: &str| cols.iter().position(|c| *c == name);
    let st = emu.inner();
    let mut out = vec![header.to_owned()];
    let mut root: Vec<String> = cols.iter().map(|_| "N/A".to_owned()).collect();
    let set = |row: &mut Vec<String>, name: &str, v: String| {
        if let Some(i) = col(name) {
            row[i] = v;
        }
    };
    set(&mut root, "user", "<root_account>".into());
    set(&mut root, "arn", "arn:aws:iam::123456789012:root".into());
    set(&mut root, "password_enabled", "not_supported".into());
    set(&mut root, "mfa_active", st.root_mfa.to_string());
    set(
        &mut root,
        "access_key_1_active",
        (!st.root_keys.is_empty()).to_string(),
    );
    set(&mut root, "access_key_2_active", "false".into());
    out.push(root.join(","));
    for line in lines {
        let mut row: Vec<String> = line.split(',').map(str::to_owned).collect();
        let user = col("user")
            .and_then(|i| row.get(i).cloned())
            .unwrap_or_default();
        let by = st.backdated.get(&user).copied().unwrap_or_default();
        for name in [
            "user_creation_time",
            "password_last_changed",
            "access_key_1_last_rotated",
            "access_key_2_last_rotated",
        ] {
            if let Some(i) = col(name) {
                row[i] = shift(&row[i], by);
            }
        }
        if let Some(used) = st.last_used.get(&user) {
            set(&mut row, "access_key_1_last_used_date", rfc3339(*used - by));
        }
        out.push(row.join(","));
    }
    out.join("\n") + "\n"
}

/// The emulator's own answer to an IAM read that moto gets wrong for an audit.
pub fn patch(emu: &Emulator, action: &str, a: &mut Answer) {
    if a.status != 200 {
        return;
    }
    let text = String::from_utf8_lossy(&a.body).into_owned();
    let patched = match action {
        "GetCredentialReport" => {
            let Some((before, rest)) = text.split_once("<Content>") else {
                return;
            };
            let Some((content, after)) = rest.split_once("</Content>") else {
                return;
            };
            let Ok(csv) = data_encoding::BASE64.decode(content.trim().as_bytes()) else {
                return;
            };
            let new = patch_report(emu, &String::from_utf8_lossy(&csv));
            format!(
                "{before}<Content>{}</Content>{after}",
                data_encoding::BASE64.encode(new.as_bytes())
            )
        }
        "GetAccountSummary" => {
            let st = emu.inner();
            let entry =
                |key: &str, v: u8| format!("<entry><key>{key}</key><value>{v}</value></entry>");
            let mut t = text.clone();
            for (key, v) in [
                (
                    "AccountAccessKeysPresent",
                    u8::from(!st.root_keys.is_empty()),
                ),
                ("AccountMFAEnabled", u8::from(st.root_mfa)),
            ] {
                for old in [0u8, 1] {
                    t = t.replace(&entry(key, old), &entry(key, v));
                }
            }
            t
        }
        _ => return,
    };
    a.body = Bytes::from(patched);
}
