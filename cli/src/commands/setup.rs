//! `keyward setup`: registers this computer. The first computer of an account uses the
//! account's admin credentials (and sets up keyward's pieces on the way); a later one
//! uses an enrollment code from an admin computer, which then grants its rights.
//! `--abort` undoes a registration that did not finish.

use std::io::{BufRead, IsTerminal};

use anyhow::{bail, Context, Result};
use aws_credential_types::Credentials;
use clap::Args;
use keyward_daemon::config::ProfileEntry;
use zeroize::Zeroizing;

use super::{execute, Rights, RunMode};
use crate::account::{self, AccountState, Request};
use crate::actor::{self, Who};
use crate::clients::Aws;
use crate::enroll_code::{self, EnrollCode};
use crate::iam::documents::{self as docs, Arns, Whitelists};
use crate::iam::{is_expired_token, users};
use crate::local::keychain::{self, StoreArgs};
use crate::names;
use crate::plan::lists::{self, CutOff, Registration};
use crate::plan::{Cx, Plan};
use crate::ui;

#[derive(Args)]
pub struct SetupArgs {
    #[command(flatten)]
    run: RunMode,
    /// Whose computer this is; the IAM user is <owner>-<machine>
    #[arg(long)]
    owner: Option<String>,
    /// This computer's name (default: its hostname, made IAM-safe)
    #[arg(long)]
    machine: Option<String>,
    #[command(flatten)]
    rights: Rights,
    /// Also deny uploads without aws:kms, and everyone not on the bucket's whitelist
    #[arg(long)]
    enforce_encryption: bool,
    /// Designate this computer as an admin computer (bootstrap only): it may then enroll
    /// and grant other computers, with MFA
    #[arg(long)]
    admin: bool,
    /// Register with an enrollment code from `keyward enroll` (read from the terminal or stdin)
    #[arg(long, conflicts_with = "admin")]
    enroll: bool,
    /// AWS profile with the account's admin credentials, for the first computer
    #[arg(long, value_name = "P")]
    admin_profile: Option<String>,
    /// keyward/AWS profile name to write (default: the IAM user name)
    #[arg(long)]
    profile: Option<String>,
    /// AWS region for STS and the API calls (default: the profile's, else us-east-1)
    #[arg(long, value_name = "R")]
    region: Option<String>,
    /// Command that prints the current MFA code, run without a shell
    #[arg(long, value_name = "CMD")]
    mfa_process: Option<String>,
    /// Base session length, e.g. 12h
    #[arg(long, value_name = "D")]
    session_duration: Option<String>,
    /// Undo a registration of this computer that did not finish
    #[arg(long)]
    abort: bool,
    #[command(flatten)]
    store: StoreArgs,
}

/// Everything about this registration that can be checked before any AWS call.
struct Local {
    owner: String,
    machine: String,
    user: String,
    profile: String,
    mfa_process: Option<Vec<String>>,
    code: Option<EnrollCode>,
}

fn local(a: &SetupArgs) -> Result<Local> {
    let code = if a.enroll {
        let text = read_enroll_code()?;
        Some(EnrollCode::decode(
            &text,
            keyward_daemon::clock::Clock::system().unix(),
        )?)
    } else {
        None
    };
    let owner = match (&a.owner, &code) {
        (Some(o), Some(c)) if *o != c.owner => bail!("this enrollment code is for owner `{}`, not `{o}`", c.owner),
        (Some(o), _) => o.clone(),
        (None, Some(c)) => c.owner.clone(),
        (None, None) => bail!("give --owner NAME (whose computer this is), or --enroll with a code from `keyward enroll`"),
    };
    let machine = match (&a.machine, &code) {
        (Some(m), Some(c)) if *m != c.machine => bail!("this enrollment code registers the computer `{}`, not `{m}`; ask the admin computer for a code for `{m}`", c.machine),
        (Some(m), _) => m.clone(),
        (None, Some(c)) => c.machine.clone(),
        (None, None) => names::default_machine(),
    };
    let user = names::machine_user(&owner, &machine)?;
    let profile = a.profile.clone().unwrap_or_else(|| user.clone());
    keyward_daemon::config::validate_name(&profile).map_err(anyhow::Error::msg)?;
    let mfa_process = a
        .mfa_process
        .as_deref()
        .map(|c| shell_words::split(c).context("cannot split --mfa-process into words"))
        .transpose()?;
    if !a.enroll
        && code.is_none()
        && (a
            .rights
            .groups
            .iter()
            .chain(&a.rights.buckets)
            .chain(&a.rights.kms_keys))
        .any(String::is_empty)
    {
        bail!("empty --group, --bucket or --kms-key");
    }
    Ok(Local {
        owner,
        machine,
        user,
        profile,
        mfa_process,
        code,
    })
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
        bail!("no enrollment code on stdin; run `keyward enroll --machine NAME` on an admin computer and paste its code here");
    }
    Ok(line)
}

pub fn setup(a: &SetupArgs) -> Result<()> {
    let l = local(a)?;
    if a.run.dry_run && !a.abort {
        let (kind, why) = keychain::pick(&a.store)?;
        ui::note(&format!("key store: {kind}, because {why}"));
    } else if !a.abort {
        keychain::choose(&a.store, Some(&l.profile), a.run.json)?;
    }
    crate::runtime()?.block_on(async {
        let mut cx = match &l.code {
            Some(c) => enrolled_cx(c, a).await?,
            None => {
                let who = Who { admin: true, admin_profile: a.admin_profile.clone(), ..Who::default() };
                actor::as_bootstrap(&who, a.region.as_deref(), a.run.yes, a.run.json).await?.cx
            }
        };
        cx.mfa_process.clone_from(&l.mfa_process);
        // Undoing is what was asked for: its policy edits need no second question.
        cx.yes |= a.abort;
        let plan = if a.abort {
            abort_plan(&cx, &l).await?
        } else if l.code.is_some() {
            check_code_unused(&cx, &l).await?;
            enrolled_plan(&cx, a, &l)
        } else {
            bootstrap_plan(&cx, a, &l).await?
        };
        let mode = RunMode { yes: a.run.yes || a.abort, ..a.run };
        let report = execute(&plan, &cx, mode).await?;
        if report.failed() {
            if a.abort {
                bail!("the undo stopped at a failed step; fix what it says and run `keyward setup --abort` again to finish");
            }
            bail!("setup stopped at a failed step; fix what it says and run `keyward setup` again to continue, or `keyward setup --abort` to undo");
        }
        if a.run.dry_run {
            return Ok(());
        }
        if a.abort {
            if !a.run.json {
                println!("removed every trace of {}", l.user);
            }
        } else {
            after_setup(&cx, &l, report.changed(), a.run.json).await;
        }
        Ok(())
    })
}

/// An enrollment code works once, for 15 minutes: say so plainly when AWS refuses it.
async fn check_code_unused(cx: &Cx, l: &Local) -> Result<()> {
    let aws = cx.registrar.as_ref().expect("an enrollment session");
    match users::get_user(aws, &l.user).await {
        Ok(Some(u)) if u.is_enrolled() => bail!("{} is already registered: an enrollment code works once. If this is not the computer you registered, tell the admin: `keyward revoke {}`", l.user, l.user),
        Ok(_) => Ok(()),
        Err(e) if is_expired_token(&e) => bail!("the enrollment code expired (AWS refused it); ask the admin computer for a new one: `keyward enroll --machine {}`", l.machine),
        Err(e) => Err(e.context("the enrollment code does not work")),
    }
}

async fn enrolled_cx(code: &EnrollCode, a: &SetupArgs) -> Result<Cx> {
    let creds = Credentials::new(
        &code.access_key_id,
        &code.secret_access_key,
        Some(code.session_token.clone()),
        None,
        "keyward-enrollment",
    );
    let aws = Aws::with_credentials(creds, Some(a.region.as_deref().unwrap_or(&code.region))).await;
    Ok(Cx {
        arns: Arns::new(&code.account),
        machine: None,
        admin: None,
        bootstrap: false,
        registrar: Some(aws),
        yes: a.run.yes,
        quiet: a.run.json,
        actor: code.issued_by.clone(),
        mfa_process: None,
        clock: keyward_daemon::clock::Clock::system(),
    })
}

fn profile_entry(cx: &Cx, a: &SetupArgs, l: &Local, region: String) -> ProfileEntry {
    ProfileEntry {
        mfa_serial: Some(cx.arns.mfa(&l.user)),
        iam_user: Some(l.user.clone()),
        region: Some(region),
        session_duration: a.session_duration.clone(),
        mfa_process: l.mfa_process.clone(),
        ..ProfileEntry::default()
    }
}

/// The computer as setup's step lists need it: its names and its profiles' entries.
fn registration(cx: &Cx, a: &SetupArgs, l: &Local, region: String) -> Registration {
    let admin_entry = a.admin.then(|| ProfileEntry {
        role_arn: Some(cx.arns.role(docs::ADMIN_ROLE)),
        source: Some(l.profile.clone()),
        region: Some(region.clone()),
        ..ProfileEntry::default()
    });
    Registration {
        user: l.user.clone(),
        owner: l.owner.clone(),
        machine: l.machine.clone(),
        profile: l.profile.clone(),
        entry: profile_entry(cx, a, l, region),
        admin_entry,
    }
}

async fn bootstrap_plan(cx: &Cx, a: &SetupArgs, l: &Local) -> Result<Plan> {
    let aws = cx.admin.as_ref().expect("bootstrap");
    let requested = a.rights.whitelists();
    let whitelists = account::resolve(aws, requested).await?;
    let state = AccountState::read(aws, &cx.arns).await?;
    let req = Request {
        whitelists: whitelists.clone(),
        owner: Some(l.owner.clone()),
        ..Request::default()
    };
    let r = registration(cx, a, l, aws.region());
    let steps = lists::setup_bootstrap(
        lists::init(&state, &req, cx.clock),
        &r,
        &whitelists,
        a.enforce_encryption,
    );
    Ok(Plan::of(
        format!(
            "register this computer as {} in account {}",
            l.user, cx.arns.account
        ),
        steps,
    ))
}

fn enrolled_plan(cx: &Cx, a: &SetupArgs, l: &Local) -> Plan {
    let code = l.code.as_ref().expect("enrolled");
    let w = Whitelists {
        groups: code.groups.clone(),
        buckets: code.buckets.clone(),
        kms_keys: code.kms_keys.clone(),
    };
    let r = registration(cx, a, l, code.region.clone());
    Plan::of(
        format!(
            "register this computer as {} with the code from {}",
            l.user, code.issued_by
        ),
        lists::setup_enrolled(&r, &w),
    )
}

async fn abort_plan(cx: &Cx, l: &Local) -> Result<Plan> {
    let aws = cx.registrar.as_ref().expect("a registrar");
    if let Some(u) = users::get_user(aws, &l.user).await? {
        if !u.is_machine() {
            bail!(
                "IAM user {} was not created by keyward; refusing to touch it",
                l.user
            );
        }
        if u.is_enrolled() && !cx.bootstrap {
            bail!(
                "{} finished registering; decommission it with `keyward deregister` instead",
                l.user
            );
        }
    }
    let how = CutOff::Abort {
        bootstrap: cx.bootstrap,
        profile: l.profile.clone(),
    };
    Ok(Plan::of(
        format!("undo the registration of {}", l.user),
        lists::cut_off(&l.user, how),
    ))
}

/// What to do next: the pairing code for an enrolled computer, the bootstrap key advice.
/// With `--json`, stdout holds only the report; the rest goes to stderr.
async fn after_setup(cx: &Cx, l: &Local, changed: bool, json: bool) {
    let Some(aws) = cx.registrar.as_ref() else {
        return;
    };
    if l.code.is_some() {
        let key = keychain::stored_key_id(&l.profile)
            .ok()
            .flatten()
            .unwrap_or_default();
        let code = enroll_code::pairing_code(&cx.arns.user(&l.user), &cx.arns.mfa(&l.user), &key);
        let line = format!(
            "this computer is registered as {}; pairing code {code}",
            l.user
        );
        if json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
        eprintln!("The admin computer shows the same pairing code before it grants this computer's rights.");
        return;
    }
    if !json {
        if changed {
            println!(
                "this computer is registered as {}; try `aws sts get-caller-identity --profile {}`",
                l.user, l.profile
            );
        } else {
            println!(
                "nothing to do: this computer is already registered as {} (profile `{}`)",
                l.user, l.profile
            );
        }
    }
    if changed {
        bootstrap_advice(aws).await;
    }
}

async fn bootstrap_advice(aws: &Aws) {
    let Ok((_, arn)) = aws.whoami().await else {
        return;
    };
    if arn.ends_with(":root") {
        ui::note("you used the account's root credentials: delete the root access key in the console (Security credentials) now that this computer is registered");
    } else if let Some(user) = arn
        .rsplit_once(":user/")
        .map(|(_, u)| u.rsplit('/').next().unwrap_or(u).to_owned())
    {
        if let Some(id) = aws.access_key_id().await {
            ui::note(&format!("the bootstrap admin key is no longer needed here; delete it with:\n    aws iam delete-access-key --user-name {user} --access-key-id {id}"));
        }
    }
}
