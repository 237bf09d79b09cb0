//! `keyward init`, `keyward setup` and `keyward enroll`: registering computers.

use std::io::{BufRead, IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use aws_credential_types::Credentials;
use clap::Args;
use keyward_daemon::config::{Config, ProfileEntry};
use keyward_daemon::keychain::{KeyStore, KeychainError, OsKeyStore};
use keyward_daemon::session::AccessKey;
use secrecy::SecretString;
use serde::Serialize;
use serde_json::json;
use zeroize::Zeroizing;

use crate::aws::Aws;
use crate::enroll_code::{self, EnrollCode};
use crate::iam::{self, documents as docs, policy, Edit, PolicyHome, UserInfo};
use crate::{cmd_profile, teardown, ui};

#[derive(Args)]
pub struct InitArgs {
    /// Admin profile to use (default: the standard chain, e.g. AWS_ACCESS_KEY_ID)
    #[arg(long, value_name = "P")]
    admin_profile: Option<String>,
    /// A bucket whose policy machine users may edit when revoking (repeatable)
    #[arg(long = "bucket", value_name = "B")]
    buckets: Vec<String>,
    /// A KMS key whose policy machine users may edit when revoking (repeatable)
    #[arg(long = "kms-key", value_name = "K")]
    kms_keys: Vec<String>,
    #[arg(long)]
    region: Option<String>,
    /// Print every document; change nothing
    #[arg(long)]
    dry_run: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct SetupArgs {
    /// Whose computer this is; the IAM user is <owner>-<machine>
    #[arg(long)]
    owner: Option<String>,
    /// Default: this computer's hostname, made IAM-safe
    #[arg(long)]
    machine: Option<String>,
    /// Group to join (repeatable): groups are the whitelist of rights
    #[arg(long = "group", value_name = "G")]
    groups: Vec<String>,
    /// Bucket whose policy should name this computer (repeatable)
    #[arg(long = "bucket", value_name = "B")]
    buckets: Vec<String>,
    /// KMS key whose policy should name this computer (repeatable)
    #[arg(long = "kms-key", value_name = "K")]
    kms_keys: Vec<String>,
    /// Also deny uploads without aws:kms and everyone not on the bucket's whitelist
    #[arg(long)]
    enforce_encryption: bool,
    /// Register with an enrollment code from `keyward enroll` (read from the terminal or stdin)
    #[arg(long)]
    enroll: bool,
    /// Admin profile for the first computer of an account
    #[arg(long, value_name = "P")]
    admin_profile: Option<String>,
    /// keyward/AWS profile name to write (default: the IAM user name)
    #[arg(long)]
    profile: Option<String>,
    #[arg(long)]
    region: Option<String>,
    /// Command that prints the current MFA code, run without a shell
    #[arg(long, value_name = "CMD")]
    mfa_process: Option<String>,
    /// Base session length, e.g. 12h
    #[arg(long, value_name = "D")]
    session_duration: Option<String>,
    /// Apply policy edits without asking
    #[arg(long)]
    yes: bool,
    #[arg(long)]
    json: bool,
    /// Remove a half-made registration of this computer
    #[arg(long)]
    abort: bool,
}

#[derive(Args)]
pub struct EnrollArgs {
    /// This computer's keyward profile (default: the only base profile)
    #[arg(long)]
    profile: Option<String>,
    #[arg(long = "group", value_name = "G")]
    groups: Vec<String>,
    #[arg(long = "bucket", value_name = "B")]
    buckets: Vec<String>,
    #[arg(long = "kms-key", value_name = "K")]
    kms_keys: Vec<String>,
    /// How long the code is valid
    #[arg(long, default_value = "15m")]
    ttl: String,
    #[arg(long)]
    json: bool,
}

/// IAM user names: `[A-Za-z0-9+=,.@_-]`, 1 to 64 characters.
pub fn check_iam_name(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
    if !ok {
        bail!("`{name}` is not a valid {what}: use 1-64 letters, digits or + = , . @ _ -");
    }
    Ok(())
}

/// The hostname, lower-cased, with anything IAM does not allow turned into `-`.
pub fn default_machine() -> String {
    let host = hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let short = host.split('.').next().unwrap_or("computer").to_lowercase();
    let mut out = String::new();
    for c in short.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '-'
        };
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    let out = out.trim_matches('-').to_owned();
    if out.is_empty() {
        "computer".to_owned()
    } else {
        out
    }
}

fn self_service_arn(account: &str) -> String {
    format!(
        "arn:aws:iam::{account}:policy/keyward/{}",
        docs::SELF_SERVICE_POLICY
    )
}

fn enroller_arn(account: &str) -> String {
    format!(
        "arn:aws:iam::{account}:role/keyward/{}",
        docs::ENROLLER_ROLE
    )
}

// ---------------------------------------------------------------- init

#[derive(Serialize)]
struct InitReport {
    account: String,
    self_service_policy: String,
    enroller_role: String,
    managed_buckets: Vec<String>,
    managed_kms_keys: Vec<String>,
    changes: Vec<String>,
}

pub fn init(a: &InitArgs) -> Result<()> {
    crate::runtime()?.block_on(async {
        let aws = Aws::admin(a.admin_profile.as_deref(), a.region.as_deref()).await?;
        let (account, _) = aws.whoami().await?;
        let mut keys = Vec::new();
        for k in &a.kms_keys {
            keys.push(
                iam::kms_key_arn(&aws, k)
                    .await?
                    .with_context(|| format!("KMS key {k} does not exist"))?,
            );
        }
        for b in &a.buckets {
            if !iam::bucket_exists(&aws, b).await? {
                bail!("bucket {b} does not exist");
            }
        }
        let report = ensure_account_pieces(&aws, &account, &a.buckets, &keys, a.dry_run).await?;
        if a.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else if !a.dry_run {
            println!("account {account}: keyward is set up");
            println!("  self-service policy {}", report.self_service_policy);
            println!("  enroller role       {}", report.enroller_role);
            println!(
                "  managed buckets     {}",
                if report.managed_buckets.is_empty() {
                    "none".into()
                } else {
                    report.managed_buckets.join(", ")
                }
            );
            println!(
                "  managed KMS keys    {}",
                if report.managed_kms_keys.is_empty() {
                    "none".into()
                } else {
                    report.managed_kms_keys.join(", ")
                }
            );
            if report.changes.is_empty() {
                println!("nothing changed: everything was already in place");
            }
            println!("next: `keyward setup --owner YOU` on this computer");
        }
        Ok(())
    })
}

/// Creates or updates the self-service policy and the enroller role. Idempotent.
async fn ensure_account_pieces(
    aws: &Aws,
    account: &str,
    buckets: &[String],
    kms_keys: &[String],
    dry_run: bool,
) -> Result<InitReport> {
    let policy_arn = self_service_arn(account);
    let existing = iam::managed_policy_document(aws, &policy_arn).await?;
    // Managed resources accumulate: keep what earlier runs listed.
    let mut managed_b: Vec<String> = Vec::new();
    let mut managed_k: Vec<String> = Vec::new();
    if let Some(doc) = &existing {
        for st in policy::statements(doc) {
            let list = |v: &serde_json::Value| -> Vec<String> {
                match v {
                    serde_json::Value::String(s) => vec![s.clone()],
                    serde_json::Value::Array(a) => a
                        .iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect(),
                    _ => Vec::new(),
                }
            };
            match st["Sid"].as_str() {
                Some("ManagedBucketPolicies") => managed_b.extend(
                    list(&st["Resource"])
                        .iter()
                        .filter_map(|r| r.strip_prefix("arn:aws:s3:::"))
                        .map(str::to_owned),
                ),
                Some("ManagedKeyPolicies") => managed_k.extend(list(&st["Resource"])),
                _ => {}
            }
        }
    }
    for b in buckets {
        if !managed_b.contains(b) {
            managed_b.push(b.clone());
        }
    }
    for k in kms_keys {
        if !managed_k.contains(k) {
            managed_k.push(k.clone());
        }
    }
    let doc = docs::self_service(account, &managed_b, &managed_k);
    let trust = docs::enroller_trust(account);
    let perms = docs::enroller_permissions(account);
    let mut changes = Vec::new();
    if dry_run {
        println!(
            "# {} (managed policy, path {})\n{}",
            docs::SELF_SERVICE_POLICY,
            docs::PATH,
            policy::to_text(&doc)
        );
        println!(
            "# {} trust policy\n{}",
            docs::ENROLLER_ROLE,
            policy::to_text(&trust)
        );
        println!(
            "# {} permissions (inline)\n{}",
            docs::ENROLLER_ROLE,
            policy::to_text(&perms)
        );
        return Ok(InitReport {
            account: account.to_owned(),
            self_service_policy: policy_arn,
            enroller_role: enroller_arn(account),
            managed_buckets: managed_b,
            managed_kms_keys: managed_k,
            changes,
        });
    }
    match &existing {
        None => {
            aws.iam
                .create_policy()
                .policy_name(docs::SELF_SERVICE_POLICY)
                .path(docs::PATH)
                .description("keyward: what every machine user may do (own MFA and keys; revoke same-owner machines)")
                .policy_document(doc.to_string())
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("iam:CreatePolicy failed: {}", iam::describe(&e)))?;
            changes.push(format!("created policy {policy_arn}"));
            ui::done(&format!("created the self-service policy {policy_arn}"));
        }
        Some(old) if *old != doc => {
            let versions = aws
                .iam
                .list_policy_versions()
                .policy_arn(&policy_arn)
                .send()
                .await
                .map_err(|e| {
                    anyhow::anyhow!("iam:ListPolicyVersions failed: {}", iam::describe(&e))
                })?;
            let old_versions: Vec<_> = versions
                .versions()
                .iter()
                .filter(|v| !v.is_default_version())
                .collect();
            if versions.versions().len() >= 5 {
                if let Some(v) = old_versions.last().and_then(|v| v.version_id()) {
                    let _ = aws
                        .iam
                        .delete_policy_version()
                        .policy_arn(&policy_arn)
                        .version_id(v)
                        .send()
                        .await;
                }
            }
            aws.iam
                .create_policy_version()
                .policy_arn(&policy_arn)
                .policy_document(doc.to_string())
                .set_as_default(true)
                .send()
                .await
                .map_err(|e| {
                    anyhow::anyhow!("iam:CreatePolicyVersion failed: {}", iam::describe(&e))
                })?;
            changes.push(format!("updated policy {policy_arn}"));
            ui::done(&format!("updated the self-service policy {policy_arn}"));
        }
        Some(_) => ui::skipped("the self-service policy is up to date"),
    }
    match aws
        .iam
        .get_role()
        .role_name(docs::ENROLLER_ROLE)
        .send()
        .await
    {
        Ok(out) => {
            let current = out
                .role()
                .and_then(|r| r.assume_role_policy_document())
                .map(iam::decode_document)
                .transpose()?;
            if current.as_ref() != Some(&trust) {
                aws.iam
                    .update_assume_role_policy()
                    .role_name(docs::ENROLLER_ROLE)
                    .policy_document(trust.to_string())
                    .send()
                    .await
                    .map_err(|e| {
                        anyhow::anyhow!("iam:UpdateAssumeRolePolicy failed: {}", iam::describe(&e))
                    })?;
                changes.push("updated the enroller trust policy".into());
            }
        }
        Err(e) if iam::code(&e) == Some("NoSuchEntity") => {
            aws.iam
                .create_role()
                .role_name(docs::ENROLLER_ROLE)
                .path(docs::PATH)
                .description("keyward: registered machines assume this, scoped down per enrollment, to register a sibling computer")
                .assume_role_policy_document(trust.to_string())
                .max_session_duration(3600)
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("iam:CreateRole failed: {}", iam::describe(&e)))?;
            changes.push(format!("created role {}", enroller_arn(account)));
            ui::done(&format!(
                "created the enroller role {}",
                enroller_arn(account)
            ));
        }
        Err(e) => bail!("iam:GetRole failed: {}", iam::describe(&e)),
    }
    let current_perms = match aws
        .iam
        .get_role_policy()
        .role_name(docs::ENROLLER_ROLE)
        .policy_name(docs::ENROLLER_POLICY)
        .send()
        .await
    {
        Ok(out) => Some(iam::decode_document(out.policy_document())?),
        Err(_) => None,
    };
    if current_perms.as_ref() == Some(&perms) {
        ui::skipped("the enroller role is up to date");
    } else {
        aws.iam
            .put_role_policy()
            .role_name(docs::ENROLLER_ROLE)
            .policy_name(docs::ENROLLER_POLICY)
            .policy_document(perms.to_string())
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("iam:PutRolePolicy failed: {}", iam::describe(&e)))?;
        changes.push("set the enroller permissions".into());
    }
    Ok(InitReport {
        account: account.to_owned(),
        self_service_policy: policy_arn,
        enroller_role: enroller_arn(account),
        managed_buckets: managed_b,
        managed_kms_keys: managed_k,
        changes,
    })
}

// ---------------------------------------------------------------- setup

#[derive(Serialize)]
struct SetupReport {
    user: String,
    arn: String,
    account: String,
    profile: String,
    mfa_serial: String,
    groups: Vec<String>,
    buckets: Vec<String>,
    kms_keys: Vec<String>,
    changed: bool,
    steps: Vec<StepLine>,
}

#[derive(Serialize)]
struct StepLine {
    step: u8,
    what: String,
    status: &'static str,
}

struct Steps {
    lines: Vec<StepLine>,
}

impl Steps {
    fn did(&mut self, step: u8, what: impl Into<String>) {
        let what = what.into();
        ui::done(&format!("{step}. {what}"));
        self.lines.push(StepLine {
            step,
            what,
            status: "done",
        });
    }

    fn had(&mut self, step: u8, what: impl Into<String>) {
        let what = what.into();
        ui::skipped(&format!("{step}. {what}"));
        self.lines.push(StepLine {
            step,
            what,
            status: "already done",
        });
    }

    fn changed(&self) -> bool {
        self.lines.iter().any(|l| l.status == "done")
    }
}

/// Reads the enrollment code from the terminal, or from stdin when there is none.
fn read_enroll_code() -> Result<Zeroizing<String>> {
    if let Some(mut tty) = keyward_proto::tty::open_tty() {
        if std::io::stdin().is_terminal() {
            return keyward_proto::tty::prompt_code(
                &mut tty,
                "Paste the enrollment code from `keyward enroll`: ",
            )
            .context("cannot read the code from the terminal");
        }
    }
    let mut line = Zeroizing::new(String::new());
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the enrollment code from stdin")?;
    if line.trim().is_empty() {
        bail!("no enrollment code on stdin; run `keyward enroll` on a registered computer and paste its code here");
    }
    Ok(line)
}

fn probe_keychain() -> Result<()> {
    match OsKeyStore.get("keyward-probe") {
        Ok(_) | Err(KeychainError::Corrupt(_) | KeychainError::Platform(_)) => Ok(()),
        Err(e) => Err(anyhow::Error::new(e)
            .context("setup needs the keychain before it changes anything; nothing was changed")),
    }
}

/// Where setup gets its IAM rights from.
enum Rights {
    Admin,
    Enrolled(Box<EnrollCode>),
}

pub fn setup(a: &SetupArgs) -> Result<()> {
    // Everything that can be checked locally is checked before any AWS call.
    let code = if a.enroll {
        let text = read_enroll_code()?;
        Some(EnrollCode::decode(&text, enroll_code::now())?)
    } else {
        None
    };
    let owner = match (&a.owner, &code) {
        (Some(o), Some(c)) if *o != c.owner => bail!("this enrollment code is for owner `{}`, not `{o}`", c.owner),
        (Some(o), _) => o.clone(),
        (None, Some(c)) => c.owner.clone(),
        (None, None) => bail!("give --owner NAME (whose computer this is), or --enroll with a code from `keyward enroll`"),
    };
    check_iam_name("owner", &owner)?;
    if owner.contains('-') {
        bail!(
            "an owner name may not contain `-` (the user is <owner>-<machine>); try `{}`",
            owner.replace('-', "_")
        );
    }
    let machine = a.machine.clone().unwrap_or_else(default_machine);
    check_iam_name("machine name", &machine)?;
    let user_name = format!("{owner}-{machine}");
    check_iam_name(
        "user name (<owner>-<machine>, at most 64 characters)",
        &user_name,
    )?;
    let profile = a.profile.clone().unwrap_or_else(|| user_name.clone());
    keyward_daemon::config::validate_name(&profile).map_err(anyhow::Error::msg)?;
    let mfa_process = a
        .mfa_process
        .as_deref()
        .map(|c| shell_words::split(c).context("cannot split --mfa-process into words"))
        .transpose()?;
    let (groups, buckets, kms_keys) = match &code {
        Some(c) => {
            for (flag, given, allowed) in [
                ("--group", &a.groups, &c.groups),
                ("--bucket", &a.buckets, &c.buckets),
                ("--kms-key", &a.kms_keys, &c.kms_keys),
            ] {
                if let Some(extra) = given.iter().find(|g| !allowed.contains(g)) {
                    bail!("{flag} {extra} is not in this enrollment code; run `keyward enroll {flag} {extra}` instead");
                }
            }
            let pick = |given: &Vec<String>, allowed: &Vec<String>| {
                if given.is_empty() {
                    allowed.clone()
                } else {
                    given.clone()
                }
            };
            (
                pick(&a.groups, &c.groups),
                pick(&a.buckets, &c.buckets),
                pick(&a.kms_keys, &c.kms_keys),
            )
        }
        None => (a.groups.clone(), a.buckets.clone(), a.kms_keys.clone()),
    };
    probe_keychain()?;
    if a.abort {
        return crate::runtime()?
            .block_on(abort(a, code, &user_name, &profile, &buckets, &kms_keys));
    }
    let rights = match code {
        Some(c) => Rights::Enrolled(Box::new(c)),
        None => Rights::Admin,
    };
    crate::runtime()?.block_on(register(
        a,
        rights,
        &owner,
        &machine,
        &user_name,
        &profile,
        mfa_process,
        groups,
        buckets,
        kms_keys,
    ))
}

async fn connect(a: &SetupArgs, rights: &Rights) -> Result<Aws> {
    match rights {
        Rights::Admin => Aws::admin(a.admin_profile.as_deref(), a.region.as_deref()).await,
        Rights::Enrolled(c) => {
            let creds = Credentials::new(
                &c.access_key_id,
                &c.secret_access_key,
                Some(c.session_token.clone()),
                None,
                "keyward-enrollment",
            );
            Ok(Aws::with_credentials(creds, Some(a.region.as_deref().unwrap_or(&c.region))).await)
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn register(
    a: &SetupArgs,
    rights: Rights,
    owner: &str,
    machine: &str,
    user_name: &str,
    profile: &str,
    mfa_process: Option<Vec<String>>,
    groups: Vec<String>,
    buckets: Vec<String>,
    kms_keys: Vec<String>,
) -> Result<()> {
    let aws = connect(a, &rights).await?;
    let (account, caller_arn) = aws
        .whoami()
        .await
        .context("these credentials do not work; check them and run setup again")?;
    ui::heading(&format!(
        "Registering this computer as {user_name} in account {account}"
    ));

    // Validate every named thing before the first change.
    for g in &groups {
        if !iam::group_exists(&aws, g).await? {
            bail!("group {g} does not exist; create it first, or drop --group {g}. Nothing was changed.");
        }
    }
    for b in &buckets {
        match iam::read_policy(&aws, &PolicyHome::Bucket(b.clone())).await {
            Ok(text) => {
                policy::parse(text.as_deref()).with_context(|| format!("the policy of bucket {b} cannot be edited safely; nothing was changed"))?;
            }
            Err(iam::ReadError::NotFound) => bail!("bucket {b} does not exist; check the name, or drop --bucket {b}. Nothing was changed."),
            Err(iam::ReadError::Other(m)) => bail!("cannot read the policy of bucket {b}: {m}. Nothing was changed."),
        }
    }
    let mut key_arns = Vec::new();
    for k in &kms_keys {
        let arn = iam::kms_key_arn(&aws, k).await?.with_context(|| {
            format!(
                "KMS key {k} does not exist; check it, or drop --kms-key {k}. Nothing was changed."
            )
        })?;
        match iam::read_policy(&aws, &PolicyHome::Key(arn.clone())).await {
            Ok(text) => {
                policy::parse(text.as_deref()).with_context(|| {
                    format!(
                        "the policy of KMS key {k} cannot be edited safely; nothing was changed"
                    )
                })?;
            }
            Err(e) => bail!("cannot read the policy of KMS key {k}: {e}. Nothing was changed."),
        }
        key_arns.push(arn);
    }
    let existing = iam::get_user(&aws, user_name).await?;
    if let Some(u) = &existing {
        match u.owner() {
            None => bail!("an IAM user {user_name} exists that keyward did not create (no {} tag); pick another --machine name. Nothing was changed.", docs::TAG_OWNER),
            Some(o) if o != owner => bail!("IAM user {user_name} belongs to owner {o}, not {owner}. Nothing was changed."),
            Some(_) if u.path != docs::PATH => bail!("IAM user {user_name} is not under {}; refusing to touch it. Nothing was changed.", docs::PATH),
            Some(_) if u.tags.contains_key(docs::TAG_REVOKED_AT) => bail!("IAM user {user_name} was revoked; pick another --machine name. Nothing was changed."),
            Some(_) => {}
        }
    }

    let mut steps = Steps { lines: Vec::new() };
    // 1. Rights.
    match &rights {
        Rights::Admin => {
            let report = ensure_account_pieces(&aws, &account, &buckets, &key_arns, false).await?;
            if report.changes.is_empty() {
                steps.had(
                    1,
                    "account pieces (self-service policy, enroller role) in place",
                );
            } else {
                steps.did(1, format!("account pieces: {}", report.changes.join("; ")));
            }
        }
        Rights::Enrolled(c) => steps.had(
            1,
            format!(
                "using the enrollment code from {} (expires in {}s)",
                c.issued_by,
                c.expires_at.saturating_sub(enroll_code::now())
            ),
        ),
    }

    // 2. The user, tagged, with the self-service policy; buckets and keys recorded
    // before any policy is edited, so --abort and revoke can always find them.
    let mut record = iam::list_tags(docs::TAG_BUCKETS, &buckets);
    record.extend(iam::list_tags(docs::TAG_KMS_KEYS, &key_arns));
    let user: UserInfo = match existing {
        Some(u) => {
            let mut want_b = u.list_tag(docs::TAG_BUCKETS);
            let mut want_k = u.list_tag(docs::TAG_KMS_KEYS);
            let before = (want_b.len(), want_k.len());
            for b in &buckets {
                if !want_b.contains(b) {
                    want_b.push(b.clone());
                }
            }
            for k in &key_arns {
                if !want_k.contains(k) {
                    want_k.push(k.clone());
                }
            }
            if (want_b.len(), want_k.len()) == before {
                steps.had(2, format!("user {} exists", u.arn));
                u
            } else {
                let mut tags = iam::list_tags(docs::TAG_BUCKETS, &want_b);
                tags.extend(iam::list_tags(docs::TAG_KMS_KEYS, &want_k));
                tags.retain(|t| !t.value().is_empty());
                iam::tag_user(&aws, user_name, tags).await?;
                steps.did(
                    2,
                    format!("user {} exists; recorded its buckets and keys", u.arn),
                );
                iam::get_user(&aws, user_name)
                    .await?
                    .context("user vanished")?
            }
        }
        None => {
            let mut tags = vec![
                iam::tag(docs::TAG_OWNER, owner),
                iam::tag(docs::TAG_MACHINE, machine),
                iam::tag(
                    docs::TAG_CREATED,
                    &humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
                ),
            ];
            tags.extend(record.into_iter().filter(|t| !t.value().is_empty()));
            let u = iam::create_user(&aws, user_name, tags).await?;
            steps.did(2, format!("created user {}", u.arn));
            u
        }
    };
    let policy_arn = self_service_arn(&account);
    if iam::attached_policies(&aws, user_name)
        .await?
        .contains(&policy_arn)
    {
        steps.had(2, "self-service policy attached");
    } else {
        iam::attach_policy(&aws, user_name, &policy_arn).await?;
        steps.did(2, "attached the self-service policy");
    }

    // 3. MFA.
    let devices = iam::mfa_devices(&aws, user_name).await?;
    let mfa_serial = if let Some(s) = devices.first() {
        steps.had(3, format!("MFA device {s} enabled"));
        s.clone()
    } else {
        iam::delete_stray_virtual_mfa(&aws, &account, user_name).await?;
        let (serial, seed) = iam::create_virtual_mfa(&aws, user_name).await?;
        show_mfa_seed(user_name, &account, &seed);
        drop(seed);
        let (c1, c2) = two_codes(mfa_process.as_deref()).with_context(|| {
            format!("the MFA device is created but not enabled; run `keyward setup` again to continue, or `keyward setup --abort --owner {owner} --machine {machine}` to undo")
        })?;
        iam::enable_mfa(&aws, user_name, &serial, &c1, &c2)
            .await
            .context("run `keyward setup` again to continue")?;
        steps.did(3, format!("enabled MFA device {serial}"));
        serial
    };

    // 4. Groups.
    let current = iam::groups_for_user(&aws, user_name).await?;
    for g in &groups {
        if current.contains(g) {
            steps.had(4, format!("in group {g}"));
        } else {
            iam::add_to_group(&aws, user_name, g).await?;
            steps.did(4, format!("joined group {g}"));
        }
    }

    // 5. Bucket and key policies, which cannot name groups.
    let root = format!("arn:aws:iam::{account}:root");
    let homes: Vec<PolicyHome> = buckets
        .iter()
        .cloned()
        .map(PolicyHome::Bucket)
        .chain(key_arns.iter().cloned().map(PolicyHome::Key))
        .collect();
    for home in &homes {
        let target = home.target();
        let enforce = (a.enforce_encryption && matches!(home, PolicyHome::Bucket(_)))
            .then_some(root.as_str());
        let edit =
            |doc: &serde_json::Value| policy::add_principal(doc, &target, &user.arn, enforce);
        match edit_with_retry(&aws, home, a.yes, edit).await? {
            Edit::Changed => steps.did(5, format!("added to the {home}")),
            Edit::Unchanged => steps.had(5, format!("in the {home}")),
            Edit::Gone => bail!("the {home} disappeared during setup; run `keyward setup` again"),
        }
    }

    // 6. The access key, straight into the keychain.
    let keys = iam::access_keys(&aws, user_name).await?;
    let stored = OsKeyStore.get(profile)?;
    let stored_ok = stored
        .as_ref()
        .is_some_and(|k| keys.iter().any(|x| x.id == k.id));
    if stored_ok {
        let id = stored.expect("checked").id;
        steps.had(
            6,
            format!(
                "access key …{} is in the keychain",
                &id[id.len().saturating_sub(4)..]
            ),
        );
    } else {
        // A key whose secret never reached the keychain is useless: remove it.
        for k in &keys {
            iam::delete_access_key(&aws, user_name, &k.id).await?;
        }
        probe_keychain()?;
        let (id, secret) = iam::create_access_key(&aws, user_name).await?;
        let key = AccessKey::new(id.clone(), SecretString::from(secret.to_string()));
        drop(secret);
        let stored = OsKeyStore
            .set(profile, &key)
            .and_then(|()| OsKeyStore.get(profile));
        match stored {
            Ok(Some(back)) if back.id == key.id && back.expose_secret() == key.expose_secret() => {}
            other => {
                iam::delete_access_key(&aws, user_name, &id).await?;
                let why = match other {
                    Err(e) => e.to_string(),
                    _ => "the keychain returned a different key".into(),
                };
                bail!("cannot store the new access key ({why}); it was deleted again. Fix the keychain (`keyward doctor`) and run `keyward setup` again");
            }
        }
        steps.did(
            6,
            format!(
                "created access key …{} and stored it in the OS keychain",
                &id[id.len().saturating_sub(4)..]
            ),
        );
        // 7. IAM is eventually consistent: wait until STS takes the key.
        let waited = wait_for_key(&key, &aws.region()).await?;
        steps.did(
            7,
            format!(
                "STS accepts the new key (after {:.1}s)",
                waited.as_secs_f64()
            ),
        );
    }

    // 8. keyward's profile and the credential_process line, then the daemon.
    let entry = ProfileEntry {
        mfa_serial: Some(mfa_serial.clone()),
        region: Some(aws.region()),
        session_duration: a.session_duration.clone(),
        mfa_process: mfa_process.clone(),
        ..ProfileEntry::default()
    };
    let cfg = Config::load(&cmd_profile::config_path()?)?;
    if cfg.profiles.get(profile) == Some(&entry) {
        steps.had(8, format!("profile `{profile}` configured"));
    } else {
        cmd_profile::save_profile(profile, entry, Some(&aws.region()))?;
        steps.did(
            8,
            format!("wrote profile `{profile}` and its credential_process line"),
        );
    }
    crate::cmd_session::lock_quietly();
    keyward_proto::spawn::ensure_running(&keyward_proto::client::Client::default_socket())
        .map_err(anyhow::Error::msg)?;

    // 9. Done: mark the registration complete (revocation and --abort read the tags).
    let fresh = iam::get_user(&aws, user_name)
        .await?
        .context("user vanished")?;
    if fresh.tags.contains_key(docs::TAG_SETUP_COMPLETE) {
        steps.had(9, "registration recorded as complete");
    } else {
        iam::tag_user(
            &aws,
            user_name,
            vec![iam::tag(
                docs::TAG_SETUP_COMPLETE,
                &humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            )],
        )
        .await?;
        steps.did(9, "registration recorded as complete");
    }

    let changed = steps.changed();
    if a.json {
        let report = SetupReport {
            user: user_name.to_owned(),
            arn: user.arn.clone(),
            account: account.clone(),
            profile: profile.to_owned(),
            mfa_serial,
            groups,
            buckets,
            kms_keys: key_arns,
            changed,
            steps: steps.lines,
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if changed {
        println!("this computer is registered as {user_name}; try `aws sts get-caller-identity --profile {profile}`");
    } else {
        println!("nothing to do: this computer is already registered as {user_name} (profile `{profile}`)");
    }
    if matches!(rights, Rights::Admin) && changed {
        bootstrap_advice(&aws, &caller_arn).await;
    }
    Ok(())
}

/// Policy edits can name a user that IAM has not spread everywhere yet.
async fn edit_with_retry(
    aws: &Aws,
    home: &PolicyHome,
    yes: bool,
    edit: impl Fn(&serde_json::Value) -> serde_json::Value,
) -> Result<Edit> {
    let started = Instant::now();
    let mut spinner: Option<ui::Spinner> = None;
    loop {
        match iam::edit_policy(aws, home, yes, &edit).await {
            Err(e)
                if format!("{e:#}").contains("Invalid principal")
                    && started.elapsed() < Duration::from_secs(90) =>
            {
                spinner.get_or_insert_with(|| {
                    ui::Spinner::start("waiting for IAM to make the new user visible")
                });
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            other => {
                if let Some(s) = spinner {
                    s.finish("IAM made the new user visible");
                }
                return other;
            }
        }
    }
}

async fn wait_for_key(key: &AccessKey, region: &str) -> Result<Duration> {
    let creds = Credentials::new(&key.id, key.expose_secret(), None, None, "keyward-new-key");
    let probe = Aws::with_credentials(creds, Some(region)).await;
    let spinner = ui::Spinner::start("waiting until STS accepts the new key");
    let started = Instant::now();
    loop {
        if probe.sts.get_caller_identity().send().await.is_ok() {
            spinner.clear();
            return Ok(started.elapsed());
        }
        if started.elapsed() > Duration::from_secs(120) {
            drop(spinner);
            bail!("STS did not accept the new key within 2 minutes; it is stored in the keychain, so run `keyward setup` again to continue");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn show_mfa_seed(user: &str, account: &str, seed: &str) {
    let uri = Zeroizing::new(format!(
        "otpauth://totp/AWS:{user}@{account}?secret={seed}&issuer=AWS"
    ));
    // Only ever to the terminal: the seed must not end up in a redirected stdout or a log.
    match keyward_proto::tty::open_tty() {
        Some(mut tty) => {
            let qr = Zeroizing::new(ui::qr(&uri));
            let _ = writeln!(
                tty,
                "\nScan this with your authenticator app (AWS {user}):\n{}",
                qr.as_str()
            );
            let _ = writeln!(tty, "or enter this secret by hand: {seed}\n");
        }
        None => ui::note(
            "no terminal: the MFA QR code is not shown; codes must come from --mfa-process",
        ),
    }
}

/// Two consecutive TOTP codes for EnableMFADevice.
fn two_codes(mfa_process: Option<&[String]>) -> Result<(Zeroizing<String>, Zeroizing<String>)> {
    use keyward_proto::tty;
    if let Some(argv) = mfa_process {
        let c1 = tty::run_mfa_process(argv, Duration::from_secs(60))?;
        let started = Instant::now();
        let mut spinner = None;
        loop {
            let c2 = tty::run_mfa_process(argv, Duration::from_secs(60))?;
            if c2 != c1 {
                if let Some(s) = spinner {
                    ui::Spinner::finish(s, "got the next MFA code");
                }
                return Ok((c1, c2));
            }
            if started.elapsed() > Duration::from_secs(65) {
                bail!("the mfa_process printed the same code for over a minute");
            }
            spinner.get_or_insert_with(|| ui::Spinner::start("waiting for the next MFA code"));
            std::thread::sleep(Duration::from_secs(2));
        }
    }
    let Some(mut t) = tty::open_tty() else {
        bail!("setup needs two MFA codes: run it in a terminal, or pass --mfa-process CMD");
    };
    let c1 = tty::prompt_code(&mut t, "First MFA code from your authenticator: ")?;
    let c2 = tty::prompt_code(
        &mut t,
        "Wait for the code to change, then enter the next one: ",
    )?;
    if !tty::is_valid_code(&c1) || !tty::is_valid_code(&c2) || c1 == c2 {
        bail!("two different 6-digit codes are needed");
    }
    Ok((c1, c2))
}

async fn bootstrap_advice(aws: &Aws, caller_arn: &str) {
    if caller_arn.ends_with(":root") {
        ui::note("you used the account's root credentials: delete the root access key in the console (Security credentials) now that this computer is registered");
    } else if let Some(user) = caller_arn
        .rsplit_once(":user/")
        .map(|(_, u)| u.rsplit('/').next().unwrap_or(u).to_owned())
    {
        if let Some(id) = aws.access_key_id().await {
            ui::note(&format!("the bootstrap admin key is no longer needed here; delete it with:\n    aws iam delete-access-key --user-name {user} --access-key-id {id}"));
        }
    }
}

async fn abort(
    a: &SetupArgs,
    code: Option<EnrollCode>,
    user_name: &str,
    profile: &str,
    buckets: &[String],
    kms_keys: &[String],
) -> Result<()> {
    let rights = match code {
        Some(c) => Rights::Enrolled(Box::new(c)),
        None => Rights::Admin,
    };
    let aws = connect(a, &rights).await?;
    let (account, caller) = aws.whoami().await?;
    let Some(user) = iam::get_user(&aws, user_name).await? else {
        forget_local(profile)?;
        println!("no IAM user {user_name}: nothing to undo in AWS; local traces removed");
        return Ok(());
    };
    if user.owner().is_none() {
        bail!("IAM user {user_name} was not created by keyward; refusing to touch it");
    }
    let mut homes = teardown::recorded_homes(&user);
    for b in buckets {
        let h = PolicyHome::Bucket(b.clone());
        if !homes.contains(&h) {
            homes.push(h);
        }
    }
    for k in kms_keys {
        if let Some(arn) = iam::kms_key_arn(&aws, k).await? {
            let h = PolicyHome::Key(arn);
            if !homes.contains(&h) {
                homes.push(h);
            }
        }
    }
    ui::heading(&format!(
        "Undoing the registration of {user_name} (as {caller})"
    ));
    let plan = teardown::Plan {
        user,
        account,
        homes,
        revoke: None,
        purge: true,
        yes: true,
    };
    let (steps, ok) = teardown::run(&aws, &plan).await;
    if ok {
        forget_local(profile)?;
    }
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"user": user_name, "complete": ok, "steps": steps})
            )?
        );
    }
    if !ok {
        bail!("the undo stopped at a failed step; run `keyward setup --abort` again to finish");
    }
    println!("removed every trace of {user_name}");
    Ok(())
}

/// Local traces of a registration: the keychain entry and the profile lines.
pub fn forget_local(profile: &str) -> Result<()> {
    OsKeyStore.delete(profile)?;
    cmd_profile::forget_profile(profile)?;
    crate::cmd_session::lock_quietly();
    Ok(())
}

// ---------------------------------------------------------------- enroll

pub fn enroll(a: &EnrollArgs) -> Result<()> {
    let ttl = keyward_daemon::config::parse_duration(&a.ttl).map_err(anyhow::Error::msg)?;
    if ttl < Duration::from_secs(1) || ttl > Duration::from_secs(3600) {
        bail!("--ttl must be between 1s and 1h");
    }
    let profile = match &a.profile {
        Some(p) => p.clone(),
        None => crate::cmd_session::default_profile()?,
    };
    crate::runtime()?.block_on(async {
        let aws = Aws::from_keyward_profile(&profile, None).await?;
        let (account, arn) = aws.whoami().await?;
        let me = arn.rsplit('/').next().unwrap_or_default().to_owned();
        let user = iam::get_user(&aws, &me).await?.with_context(|| format!("{arn} is not a keyward machine user"))?;
        let owner = user.owner().with_context(|| format!("{me} has no {} tag; register this computer with `keyward setup` first", docs::TAG_OWNER))?.to_owned();
        let mut keys = Vec::new();
        for k in &a.kms_keys {
            keys.push(if k.starts_with("arn:") { k.clone() } else { iam::kms_key_arn(&aws, k).await?.with_context(|| format!("KMS key {k} does not exist"))? });
        }
        let session_policy = docs::enrollment_session(&account, &owner, &a.groups, &a.buckets, &keys);
        let duration = ttl.as_secs().clamp(900, 3600);
        let out = aws
            .sts
            .assume_role()
            .role_arn(enroller_arn(&account))
            .role_session_name(format!("keyward-enroll-{owner}"))
            .policy(session_policy.to_string())
            .duration_seconds(i32::try_from(duration).unwrap_or(3600))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("cannot assume {}: {}; was `keyward init` run for this account?", enroller_arn(&account), iam::describe(&e)))?;
        let c = out.credentials().context("AssumeRole answered without credentials")?;
        let issued = enroll_code::now();
        let code = EnrollCode {
            account: account.clone(),
            region: aws.region(),
            owner: owner.clone(),
            groups: a.groups.clone(),
            buckets: a.buckets.clone(),
            kms_keys: keys,
            issued_at: issued,
            expires_at: issued + ttl.as_secs(),
            issued_by: me.clone(),
            access_key_id: c.access_key_id().to_owned(),
            secret_access_key: c.secret_access_key().to_owned(),
            session_token: c.session_token().to_owned(),
        };
        let text = code.encode();
        if a.json {
            println!("{}", json!({"code": text.as_str(), "owner": owner, "expires_at": humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_secs(code.expires_at)).to_string()}));
        } else {
            eprintln!("Enrollment code for a new computer of {owner} (valid {}; groups: {}; buckets: {}; keys: {}):",
                humantime::format_duration(ttl), list_or_none(&a.groups), list_or_none(&a.buckets), list_or_none(&a.kms_keys));
            println!("{}", text.as_str());
            if let Some(mut tty) = keyward_proto::tty::open_tty() {
                let qr = Zeroizing::new(ui::qr(&text));
                let _ = writeln!(tty, "{}", qr.as_str());
            }
            eprintln!("On the new computer run `keyward setup --enroll` and paste it. Treat it like a password.");
        }
        Ok(())
    })
}

fn list_or_none(v: &[String]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iam_names_are_checked() {
        assert!(check_iam_name("x", "alice-laptop_2.0@home").is_ok());
        assert!(check_iam_name("x", "").is_err());
        assert!(check_iam_name("x", &"a".repeat(65)).is_err());
        assert!(check_iam_name("x", "alice laptop").is_err());
        assert!(check_iam_name("x", "alice/laptop").is_err());
    }

    #[test]
    fn default_machine_is_iam_safe() {
        let m = default_machine();
        assert!(check_iam_name("machine", &m).is_ok(), "{m}");
        assert_eq!(m, m.to_lowercase());
    }
}
