//! This computer: plaintext keys in `~/.aws/credentials` or the environment, and
//! `credential_process` lines that do not run keyward.

use super::{Finding, Severity};
use crate::local::aws_config as awsfiles;

/// A long-term key id (temporary ones start with ASIA).
fn long_term(id: &str) -> bool {
    id.starts_with("AKIA")
}

pub fn findings() -> Vec<Finding> {
    let mut out = Vec::new();
    if let Ok(path) = awsfiles::credentials_path() {
        let text = awsfiles::read_or_empty(&path).unwrap_or_default();
        for (section, _, _) in awsfiles::entries(&text, &["aws_secret_access_key"]) {
            out.push(Finding::new(Severity::High, "local-plaintext-key",
                format!("a plaintext access key in section [{section}]"), path.display().to_string(),
                format!("keyward key import --profile {section} --from-credentials-profile {section} --scrub")));
        }
    }
    if let (Ok(id), true) = (
        std::env::var("AWS_ACCESS_KEY_ID"),
        std::env::var_os("AWS_SECRET_ACCESS_KEY").is_some(),
    ) {
        if long_term(&id) && std::env::var_os("AWS_SESSION_TOKEN").is_none() {
            out.push(Finding::new(Severity::Medium, "local-env-key",
                "a long-term access key in this shell's environment (AWS_ACCESS_KEY_ID)", "environment",
                "move it into keyward (`keyward key import --profile P`, which reads these variables), then unset them"));
        }
    }
    if let Ok(path) = awsfiles::config_path() {
        let text = awsfiles::read_or_empty(&path).unwrap_or_default();
        for (section, _, v) in awsfiles::entries(&text, &["credential_process"]) {
            if !v.contains("keyward") {
                out.push(Finding::new(Severity::Low, "local-foreign-credential-process",
                    format!("profile [{section}] gets credentials from `{v}`, not keyward"), path.display().to_string(),
                    format!("if it hands out a long-term key, register this computer with keyward (`keyward setup`) and point [{section}] at `keyward-credential-process`")));
            }
        }
    }
    out
}
