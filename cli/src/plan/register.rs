//! Steps that register a computer: its user, the machine policy, its MFA device, its
//! key (straight into the keychain), the completion mark, and the whitelists an admin
//! adds it to (groups, bucket and key policies).

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use keyward_daemon::session::AccessKey;
use secrecy::SecretString;
use zeroize::Zeroizing;

use super::account::keepers;
use super::{Cx, FlowStep, Needs, State, StepId};
use crate::clients::Aws;
use crate::iam::documents as docs;
use crate::iam::resources::{self, Edit, PolicyHome};
use crate::iam::{credentials, is_invalid_principal, key_suffix, policy, roles, users};
use crate::local::keychain;
use crate::ui;

/// A step that registers a computer (`keyward setup`) or puts it on the whitelists
/// (`setup`, `grant`, `enroll`, `app grant`).
#[derive(Debug, Clone)]
pub enum RegisterStep {
    CreateUser {
        user: String,
        owner: String,
        machine: String,
    },
    AttachMachinePolicy {
        user: String,
    },
    EnableMfa {
        user: String,
    },
    StoreKey {
        user: String,
        profile: String,
    },
    MarkEnrolled {
        user: String,
    },
    JoinGroup {
        user: String,
        group: String,
    },
    NameInPolicy {
        user: String,
        home: PolicyHome,
        enforce: bool,
    },
    /// The role guard gets a statement for this owner, so a sibling's revocation of
    /// one of its machines ends that machine's role sessions.
    GuardOwner {
        owner: String,
    },
}

impl FlowStep for RegisterStep {
    fn id(&self) -> StepId {
        match self {
            RegisterStep::CreateUser { .. } => StepId::CreateUser,
            RegisterStep::AttachMachinePolicy { .. } => StepId::AttachMachinePolicy,
            RegisterStep::EnableMfa { .. } => StepId::EnableMfa,
            RegisterStep::StoreKey { .. } => StepId::StoreKey,
            RegisterStep::MarkEnrolled { .. } => StepId::MarkEnrolled,
            RegisterStep::JoinGroup { .. } => StepId::JoinGroup,
            RegisterStep::NameInPolicy { .. } => StepId::NameInPolicy,
            RegisterStep::GuardOwner { .. } => StepId::GuardOwner,
        }
    }

    fn needs(&self) -> Needs {
        match self {
            RegisterStep::CreateUser { .. }
            | RegisterStep::AttachMachinePolicy { .. }
            | RegisterStep::EnableMfa { .. }
            | RegisterStep::StoreKey { .. }
            | RegisterStep::MarkEnrolled { .. } => Needs::Registrar,
            RegisterStep::JoinGroup { .. }
            | RegisterStep::NameInPolicy { .. }
            | RegisterStep::GuardOwner { .. } => Needs::Admin,
        }
    }

    fn label(&self) -> String {
        match self {
            RegisterStep::CreateUser { user, .. } => format!("IAM user /keyward/{user}"),
            RegisterStep::AttachMachinePolicy { user } => format!("{user}: the machine policy"),
            RegisterStep::EnableMfa { user } => format!("{user}: virtual MFA device"),
            RegisterStep::StoreKey { user, .. } => {
                format!("{user}: access key, straight into the key store")
            }
            RegisterStep::MarkEnrolled { user } => {
                format!("{user}: mark the registration complete")
            }
            RegisterStep::JoinGroup { user, group } => format!("{user}: join group {group}"),
            RegisterStep::NameInPolicy { user, home, .. } => {
                format!("{user}: named in the {home}")
            }
            RegisterStep::GuardOwner { owner } => {
                format!("role guard: revocations by {owner}'s computers end role sessions")
            }
        }
    }

    async fn check(&self, cx: &Cx) -> Result<State> {
        let aws = cx.aws(self.needs())?;
        match self {
            RegisterStep::CreateUser { user, owner, .. } => check_user(aws, user, owner).await,
            RegisterStep::AttachMachinePolicy { user } => check_machine_policy(aws, cx, user).await,
            RegisterStep::EnableMfa { user } => check_mfa(aws, user).await,
            RegisterStep::StoreKey { user, profile } => check_key(aws, user, profile).await,
            RegisterStep::MarkEnrolled { user } => check_enrolled(aws, user).await,
            RegisterStep::JoinGroup { user, group } => check_group(aws, user, group).await,
            RegisterStep::NameInPolicy {
                user,
                home,
                enforce,
            } => check_named(aws, cx, user, home, *enforce).await,
            RegisterStep::GuardOwner { owner } => check_guarded_owner(aws, cx, owner).await,
        }
    }

    async fn apply(&self, cx: &Cx) -> Result<String> {
        let aws = cx.aws(self.needs())?;
        match self {
            RegisterStep::CreateUser {
                user,
                owner,
                machine,
            } => create_user(aws, cx, user, owner, machine).await,
            RegisterStep::AttachMachinePolicy { user } => {
                attach_machine_policy(aws, cx, user).await
            }
            RegisterStep::EnableMfa { user } => enable_mfa(aws, cx, user).await,
            RegisterStep::StoreKey { user, profile } => store_key(aws, user, profile).await,
            RegisterStep::MarkEnrolled { user } => mark_enrolled(aws, cx, user).await,
            RegisterStep::JoinGroup { user, group } => join_group(aws, user, group).await,
            RegisterStep::NameInPolicy {
                user,
                home,
                enforce,
            } => name_in_policy(aws, cx, user, home, *enforce).await,
            RegisterStep::GuardOwner { owner } => guard_owner(aws, cx, owner).await,
        }
    }
}

async fn check_user(aws: &Aws, user: &str, owner: &str) -> Result<State> {
    let Some(u) = users::get_user(aws, user).await? else {
        return Ok(State::ToDo(
            "create it, tagged with owner, machine and date".into(),
        ));
    };
    if !u.is_machine() {
        bail!("an IAM user {user} exists that keyward did not create (not under {} with a {} tag); pick another --machine name", docs::PATH, docs::TAG_OWNER);
    }
    if u.owner() != Some(owner) {
        bail!(
            "IAM user {user} belongs to owner {}, not {owner}",
            u.owner().unwrap_or("?")
        );
    }
    if u.revoked_at().is_some() {
        bail!("IAM user {user} was revoked; pick another --machine name");
    }
    Ok(State::Done(u.arn))
}

async fn create_user(aws: &Aws, cx: &Cx, user: &str, owner: &str, machine: &str) -> Result<String> {
    let now = cx.clock.rfc3339();
    let tags = vec![
        users::tag(docs::TAG_OWNER, owner),
        users::tag(docs::TAG_MACHINE, machine),
        users::tag(docs::TAG_CREATED, &now),
    ];
    users::create_user(aws, user, tags).await?;
    Ok(format!("created /keyward/{user}"))
}

async fn check_machine_policy(aws: &Aws, cx: &Cx, user: &str) -> Result<State> {
    let attached = users::attached_policies(aws, user).await?;
    Ok(
        if attached.contains(&cx.arns.policy(docs::MACHINE_POLICY)) {
            State::Done("attached".into())
        } else {
            State::ToDo("attach keyward-machine".into())
        },
    )
}

async fn attach_machine_policy(aws: &Aws, cx: &Cx, user: &str) -> Result<String> {
    users::attach_policy(aws, user, &cx.arns.policy(docs::MACHINE_POLICY)).await?;
    Ok("attached keyward-machine".into())
}

async fn check_mfa(aws: &Aws, user: &str) -> Result<State> {
    Ok(match credentials::mfa_devices(aws, user).await?.first() {
        Some(serial) => State::Done(serial.clone()),
        None => State::ToDo("create it; show its QR code; read two codes".into()),
    })
}

async fn enable_mfa(aws: &Aws, cx: &Cx, user: &str) -> Result<String> {
    credentials::delete_stray_virtual_mfa(aws, &cx.arns.account, user).await?;
    let (serial, seed) = credentials::create_virtual_mfa(aws, user).await?;
    show_mfa_seed(user, &cx.arns.account, &seed);
    drop(seed);
    let (c1, c2) = two_codes(cx.mfa_process.as_deref()).context(
        "the MFA device is created but not enabled; run `keyward setup` again to continue",
    )?;
    credentials::enable_mfa(aws, user, &serial, &c1, &c2).await?;
    Ok(format!("enabled {serial}"))
}

fn show_mfa_seed(user: &str, account: &str, seed: &str) {
    let uri = Zeroizing::new(format!(
        "otpauth://totp/AWS:{user}@{account}?secret={seed}&issuer=AWS"
    ));
    // Only ever to the terminal: the seed must not reach a redirected stdout or a log.
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

async fn check_key(aws: &Aws, user: &str, profile: &str) -> Result<State> {
    let listed = credentials::access_keys(aws, user).await?;
    Ok(match keychain::stored_key_id(profile)? {
        Some(id) if listed.iter().any(|k| k.id == id) => State::Done(format!(
            "key {} is in this computer's key store",
            key_suffix(&id)
        )),
        _ => State::ToDo(
            "create one; it goes to the key store only, never a plaintext file or the screen"
                .into(),
        ),
    })
}

async fn store_key(aws: &Aws, user: &str, profile: &str) -> Result<String> {
    // A key whose secret never reached the keychain is useless: remove it.
    for k in credentials::access_keys(aws, user).await? {
        credentials::delete_access_key(aws, user, &k.id).await?;
    }
    keychain::probe()?;
    let (id, secret) = credentials::create_access_key(aws, user).await?;
    let key = AccessKey::new(id.clone(), SecretString::from(secret.to_string()));
    drop(secret);
    if let Err(why) = keychain::store_and_verify(profile, &key) {
        credentials::delete_access_key(aws, user, &id).await?;
        bail!("cannot store the new access key ({why}); it was deleted again. Fix the key store (`keyward doctor`) and run `keyward setup` again");
    }
    Ok(format!(
        "created key {} and stored it in the {} store",
        key_suffix(&id),
        keychain::target_kind()
    ))
}

async fn check_enrolled(aws: &Aws, user: &str) -> Result<State> {
    let u = users::get_user(aws, user)
        .await?
        .context("the user is gone")?;
    Ok(if u.is_enrolled() {
        State::Done("complete".into())
    } else {
        State::ToDo(format!("tag {}", docs::TAG_ENROLLED))
    })
}

async fn mark_enrolled(aws: &Aws, cx: &Cx, user: &str) -> Result<String> {
    let now = cx.clock.rfc3339();
    users::tag_user(aws, user, vec![users::tag(docs::TAG_ENROLLED, &now)]).await?;
    Ok("registration complete: an enrollment code can create no further key".into())
}

async fn check_group(aws: &Aws, user: &str, group: &str) -> Result<State> {
    Ok(
        if users::groups_for_user(aws, user)
            .await?
            .iter()
            .any(|g| g == group)
        {
            State::Done("member".into())
        } else {
            State::ToDo("add it".into())
        },
    )
}

async fn join_group(aws: &Aws, user: &str, group: &str) -> Result<String> {
    users::add_to_group(aws, user, group).await?;
    Ok("added".into())
}

fn edit_for<'a>(
    cx: &'a Cx,
    arn: &'a str,
    home: &'a PolicyHome,
    enforce: bool,
) -> impl Fn(&serde_json::Value) -> serde_json::Value + 'a {
    move |doc| {
        let (root, admin) = keepers(&cx.arns);
        let keep = policy::Keepers {
            account_root: &root,
            admin_role: &admin,
        };
        let enforce =
            (enforce || policy::is_enforced(doc)) && matches!(home, PolicyHome::Bucket(_));
        // A trust policy has no machines statement: nothing to add there.
        home.target().map_or_else(
            || doc.clone(),
            |t| policy::add_principal(doc, &t, arn, enforce.then_some(&keep)),
        )
    }
}

async fn check_named(
    aws: &Aws,
    cx: &Cx,
    user: &str,
    home: &PolicyHome,
    enforce: bool,
) -> Result<State> {
    let arn = cx.arns.user(user);
    let text = match resources::read_policy(aws, home).await {
        Ok(t) => t,
        Err(resources::ReadError::NotFound) => bail!("the {home} does not exist"),
        Err(resources::ReadError::Other(e)) => return Err(home.unreadable(e)),
    };
    let doc = policy::parse(text.as_deref())?;
    Ok(if edit_for(cx, &arn, home, enforce)(&doc) == doc {
        State::Done("named".into())
    } else {
        State::ToDo("add its ARN to keyward's statement (with MFA)".into())
    })
}

async fn name_in_policy(
    aws: &Aws,
    cx: &Cx,
    user: &str,
    home: &PolicyHome,
    enforce: bool,
) -> Result<String> {
    let arn = cx.arns.user(user);
    let started = Instant::now();
    let mut spinner: Option<ui::Spinner> = None;
    // IAM is eventually consistent: a brand-new user can be an "invalid principal"
    // in a resource policy for a few seconds.
    loop {
        match resources::edit_policy(aws, home, cx, edit_for(cx, &arn, home, enforce)).await {
            Err(e) if is_invalid_principal(&e) && started.elapsed() < Duration::from_secs(90) => {
                spinner.get_or_insert_with(|| {
                    ui::Spinner::start("waiting for IAM to make the new user visible")
                });
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            other => {
                if let Some(s) = spinner {
                    s.clear();
                }
                return Ok(match other? {
                    Edit::Changed => "added".into(),
                    Edit::Unchanged => "already named".into(),
                    Edit::Gone => bail!("the {home} disappeared"),
                });
            }
        }
    }
}

async fn check_guarded_owner(aws: &Aws, cx: &Cx, owner: &str) -> Result<State> {
    let (_, owners) = super::revoke::guard_contents(aws, cx).await?;
    Ok(if owners.iter().any(|o| o == owner) {
        State::Done("its statement is there".into())
    } else {
        State::ToDo(format!("add a statement for {owner}'s revocation marks"))
    })
}

async fn guard_owner(aws: &Aws, cx: &Cx, owner: &str) -> Result<String> {
    let (revoked, mut owners) = super::revoke::guard_contents(aws, cx).await?;
    owners.push(owner.to_owned());
    owners.sort();
    owners.dedup();
    let doc = super::revoke::with_grants(aws, cx, docs::role_guard(&revoked, &owners)).await?;
    roles::set_managed_policy(aws, &cx.arns.policy(docs::ROLE_GUARD_POLICY), &doc).await?;
    Ok(format!("added {owner}"))
}
