//! `keyward enroll`: on an admin computer, an enrollment code that registers exactly
//! one named computer, once, within 15 minutes. Then, like pairing a device, it waits
//! for that computer to appear, shows the pairing code both screens must agree on, and
//! grants the computer its groups, bucket and key policies.

use std::fmt::Write as _;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use zeroize::Zeroizing;

use super::{execute, Rights, RunMode};
use crate::actor::{self, Actor, Who};
use crate::enroll_code::{self, EnrollCode};
use crate::iam::documents::{self as docs, Whitelists};
use crate::iam::{credentials, roles, users, AwsError};
use crate::names;
use crate::plan::{lists, Plan};
use crate::ui;

/// AWS's shortest session, and the promise of an enrollment code.
const CODE_LIFETIME: Duration = Duration::from_secs(900);

#[derive(Args)]
pub struct EnrollArgs {
    /// The new computer's name: the code registers `<owner>-<machine>` and nothing else
    #[arg(long)]
    machine: Option<String>,
    /// Whose computer it is (default: this computer's owner)
    #[arg(long)]
    owner: Option<String>,
    #[command(flatten)]
    rights: Rights,
    /// This computer's keyward profile (default: the only base profile)
    #[arg(long)]
    profile: Option<String>,
    /// Print the code and stop; grant later with `keyward grant MACHINE`
    #[arg(long)]
    no_wait: bool,
    /// Grant only if the new computer shows this pairing code
    #[arg(long, value_name = "CODE")]
    pairing_code: Option<String>,
    /// Grant without asking
    #[arg(long)]
    yes: bool,
    /// One JSON object per line on stdout: the code, then the grant's report
    #[arg(long)]
    json: bool,
}

fn machine_name(a: &EnrollArgs) -> Result<String> {
    if let Some(m) = &a.machine {
        return Ok(m.clone());
    }
    let Some(mut tty) = keyward_proto::tty::open_tty() else {
        bail!("an enrollment code registers one named computer: give its name with `keyward enroll --machine NAME`");
    };
    write!(tty, "Name of the new computer (e.g. work): ")?;
    tty.flush()?;
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(&tty), &mut line)?;
    Ok(line.trim().to_owned())
}

pub fn enroll(a: &EnrollArgs) -> Result<()> {
    let machine = machine_name(a)?;
    crate::runtime()?.block_on(async {
        let who = Who { profile: a.profile.clone(), ..Who::default() };
        let actor = actor::as_machine(&who, a.yes, a.json).await?;
        let Some(admin) = actor.cx.admin.as_ref() else {
            bail!("enrollment codes come from an admin computer, and this one is not (or could not assume keyward-admin); designate it with `keyward init --admin-machine {}` using the account's admin credentials", actor.cx.actor);
        };
        let owner = a.owner.clone().or_else(|| actor.owner().map(str::to_owned)).context("no owner")?;
        let user = names::machine_user(&owner, &machine)?;
        if let Some(u) = users::get_user(admin, &user).await? {
            bail!("{user} exists already{}; pick another --machine name, or revoke it first", if u.is_enrolled() { " and is registered" } else { " (an unfinished registration: `keyward revoke` it)" });
        }
        let grants = a.rights.whitelists();
        let grants = check_whitelisted(admin, grants).await?;
        guard_owner(&actor, &owner).await?;
        let code = mint(&actor, &owner, &machine, &grants).await?;
        show_code(&code, a.json)?;
        drop(code);
        if a.no_wait {
            eprintln!("once {user} has registered, grant its rights with `keyward grant {machine} --owner {owner}{}`", flags(&grants));
            return Ok(());
        }
        let pairing = wait_for(&actor, &user).await?;
        confirm_pairing(&user, &pairing, a)?;
        grant(&actor, &user, &grants, a).await
    })
}

/// Before a new owner's first computer exists: the role guard gets its statement, so a
/// revocation by any of that owner's computers ends role sessions from the start.
async fn guard_owner(actor: &Actor, owner: &str) -> Result<()> {
    let plan = Plan::of(
        format!("the role guard knows owner {owner}"),
        vec![lists::guard_owner(owner)],
    );
    let report = crate::plan::run(&plan, &actor.cx, false).await;
    if report.failed() {
        bail!("cannot add {owner} to keyward-role-guard ({}); nothing was minted. Run `keyward init` with the account's admin credentials, then enroll again", report.steps.first().map_or("unknown", |s| s.detail.as_str()));
    }
    Ok(())
}

/// The named groups, buckets and keys must be ones an admin may edit.
async fn check_whitelisted(admin: &crate::clients::Aws, mut w: Whitelists) -> Result<Whitelists> {
    let doc = roles::inline_policy(admin, docs::ADMIN_ROLE, docs::ADMIN_ROLE)
        .await?
        .unwrap_or_default();
    let allowed = docs::admin_policy_whitelists(&doc);
    let mut keys = Vec::new();
    for k in &w.kms_keys {
        keys.push(
            crate::iam::resources::kms_key_arn(admin, k)
                .await?
                .with_context(|| format!("KMS key {k} does not exist"))?,
        );
    }
    w.kms_keys = keys;
    for (flag, named, ok) in [
        ("--group", &w.groups, &allowed.groups),
        ("--bucket", &w.buckets, &allowed.buckets),
        ("--kms-key", &w.kms_keys, &allowed.kms_keys),
    ] {
        if let Some(x) = named.iter().find(|x| !ok.contains(x)) {
            bail!("{flag} {x} is not among the whitelists admin computers may edit; the account's admin adds it with `keyward init {flag} {x}`. Nothing was changed.");
        }
    }
    Ok(w)
}

/// An enrollment session: the enroller role, tagged with the one computer it registers.
async fn mint(
    actor: &Actor,
    owner: &str,
    machine: &str,
    grants: &Whitelists,
) -> Result<EnrollCode> {
    let admin = actor.cx.admin.as_ref().expect("admin");
    let tag = |k: &str, v: &str| {
        aws_sdk_sts::types::Tag::builder()
            .key(k)
            .value(v)
            .build()
            .expect("key and value")
    };
    let out = admin
        .sts
        .assume_role()
        .role_arn(actor.cx.arns.role(docs::ENROLLER_ROLE))
        .role_session_name(
            format!("keyward-enroll-{owner}-{machine}")
                .chars()
                .take(64)
                .collect::<String>(),
        )
        .duration_seconds(i32::try_from(CODE_LIFETIME.as_secs()).unwrap_or(900))
        .tags(tag(docs::TAG_OWNER, owner))
        .tags(tag(docs::TAG_MACHINE, machine))
        .send()
        .await
        .map_err(|e| {
            AwsError::new("sts:AssumeRole", &e).reworded(|d| {
                format!("cannot mint an enrollment session ({d}); was `keyward init` run for this account?")
            })
        })?;
    let c = out
        .credentials()
        .context("AssumeRole answered without credentials")?;
    let issued = actor.cx.clock.unix();
    Ok(EnrollCode {
        account: actor.cx.arns.account.clone(),
        region: admin.region(),
        owner: owner.to_owned(),
        machine: machine.to_owned(),
        groups: grants.groups.clone(),
        buckets: grants.buckets.clone(),
        kms_keys: grants.kms_keys.clone(),
        issued_at: issued,
        expires_at: issued + CODE_LIFETIME.as_secs(),
        issued_by: actor.cx.actor.clone(),
        access_key_id: c.access_key_id().to_owned(),
        secret_access_key: c.secret_access_key().to_owned(),
        session_token: c.session_token().to_owned(),
    })
}

/// `keyward enroll --json`: the first line on stdout.
#[derive(serde::Serialize)]
struct CodeOutput<'a> {
    code: &'a str,
    user: &'a str,
    expires_at: &'a str,
}

fn show_code(code: &EnrollCode, json: bool) -> Result<()> {
    let text = code.encode();
    let user = format!("{}-{}", code.owner, code.machine);
    if json {
        let expires = humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + Duration::from_secs(code.expires_at),
        )
        .to_string();
        let out = CodeOutput {
            code: text.as_str(),
            user: &user,
            expires_at: &expires,
        };
        println!("{}", serde_json::to_string(&out)?);
    } else {
        eprintln!("Enrollment code for {user} (valid 15 minutes, once; treat it like a password):");
        println!("{}", text.as_str());
        if let Some(mut tty) = keyward_proto::tty::open_tty() {
            let qr = Zeroizing::new(ui::qr(&text));
            let _ = writeln!(tty, "{}", qr.as_str());
        }
        eprintln!("On the new computer run `keyward setup --enroll` and paste it.");
    }
    std::io::stdout().flush()?;
    Ok(())
}

fn flags(w: &Whitelists) -> String {
    let mut out = String::new();
    for (flag, items) in [
        ("--group", &w.groups),
        ("--bucket", &w.buckets),
        ("--kms-key", &w.kms_keys),
    ] {
        for i in items {
            let _ = write!(out, " {flag} {i}");
        }
    }
    out
}

/// Waits for the computer to finish registering; returns its pairing code.
async fn wait_for(actor: &Actor, user: &str) -> Result<String> {
    let admin = actor.cx.admin.as_ref().expect("admin");
    let spinner = ui::Spinner::start(&format!(
        "waiting for {user} to register (Ctrl-C to stop; grant later with `keyward grant`)"
    ));
    let deadline = Instant::now() + CODE_LIFETIME + Duration::from_secs(120);
    loop {
        if let Some(u) = users::get_user(admin, user).await? {
            if u.is_enrolled() {
                spinner.clear();
                let keys = credentials::access_keys(admin, user).await?;
                let mfa = credentials::mfa_devices(admin, user).await?;
                if keys.len() != 1 || mfa.len() != 1 {
                    bail!("{user} registered with {} keys and {} MFA devices, not what `keyward setup` makes; do not trust it: `keyward revoke {user}`", keys.len(), mfa.len());
                }
                return Ok(enroll_code::pairing_code(&u.arn, &mfa[0], &keys[0].id));
            }
        }
        if Instant::now() > deadline {
            drop(spinner);
            bail!("{user} did not register while the code was valid; run `keyward enroll` again for a new code");
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

fn confirm_pairing(user: &str, pairing: &str, a: &EnrollArgs) -> Result<()> {
    eprintln!("{user} registered; pairing code {pairing}");
    if let Some(expected) = &a.pairing_code {
        if !expected.eq_ignore_ascii_case(pairing) {
            bail!("the pairing code {pairing} is not {expected}: someone else may have used the code. Nothing was granted; revoke it with `keyward revoke {user}`");
        }
        return Ok(());
    }
    if a.yes {
        return Ok(());
    }
    if !ui::confirm("does the new computer show the same pairing code?")? {
        bail!("nothing was granted; if the codes differ, someone else used the code: `keyward revoke {user}`");
    }
    Ok(())
}

async fn grant(actor: &Actor, user: &str, w: &Whitelists, a: &EnrollArgs) -> Result<()> {
    let plan = Plan::of(
        format!("grant {user} its rights"),
        lists::whitelists(user, w, false),
    );
    let mode = RunMode {
        dry_run: false,
        yes: true,
        json: false,
    };
    let report = execute(&plan, &actor.cx, mode).await?;
    if a.json {
        println!("{}", serde_json::to_string(&report.to_json())?);
    }
    if report.failed() {
        bail!(
            "granting stopped at a failed step; finish with `keyward grant {user}{}`",
            flags(w)
        );
    }
    if !a.json {
        println!("{user} is enrolled and granted");
    }
    Ok(())
}
