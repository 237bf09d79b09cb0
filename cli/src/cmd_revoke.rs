//! `keyward machines`, `keyward revoke MACHINE` and `keyward deregister`.

use std::time::SystemTime;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Serialize;
use serde_json::json;

use crate::aws::Aws;
use crate::iam::{self, documents as docs, PolicyHome, UserInfo};
use crate::{cmd_setup, teardown, ui};

#[derive(Args)]
pub struct Who {
    /// This computer's keyward profile (default: the only base profile)
    #[arg(long)]
    profile: Option<String>,
    /// Act with admin credentials (any owner's machines)
    #[arg(long)]
    admin: bool,
    /// Admin profile, with --admin (default: the standard chain)
    #[arg(long, value_name = "P", requires = "admin")]
    admin_profile: Option<String>,
}

#[derive(Args)]
pub struct MachinesArgs {
    #[command(flatten)]
    who: Who,
    /// With --admin: list this owner's machines (default: every owner)
    #[arg(long)]
    owner: Option<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct RevokeArgs {
    /// The machine (`laptop`) or its IAM user (`alice-laptop`)
    machine: String,
    #[command(flatten)]
    who: Who,
    /// Show the plan; change nothing
    #[arg(long)]
    dry_run: bool,
    /// Do not ask before changing anything
    #[arg(long)]
    yes: bool,
    /// Also delete the IAM user (default: keep a tagged tombstone)
    #[arg(long)]
    purge: bool,
    /// Also remove it from this bucket's policy (repeatable)
    #[arg(long = "bucket", value_name = "B")]
    buckets: Vec<String>,
    /// Also remove it from this KMS key's policy (repeatable)
    #[arg(long = "kms-key", value_name = "K")]
    kms_keys: Vec<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct DeregisterArgs {
    #[arg(long)]
    profile: Option<String>,
    #[arg(long)]
    yes: bool,
    #[arg(long)]
    json: bool,
}

/// Who is acting: a machine user (with its owner) or an admin.
struct Actor {
    aws: Aws,
    account: String,
    arn: String,
    /// The machine user running this, when not an admin.
    me: Option<UserInfo>,
}

impl Actor {
    fn owner(&self) -> Option<&str> {
        self.me.as_ref().and_then(UserInfo::owner)
    }

    fn name(&self) -> String {
        self.me
            .as_ref()
            .map_or_else(|| self.arn.clone(), |u| u.name.clone())
    }
}

async fn actor(who: &Who) -> Result<Actor> {
    let aws = if who.admin {
        Aws::admin(who.admin_profile.as_deref(), None).await?
    } else {
        let profile = match &who.profile {
            Some(p) => p.clone(),
            None => crate::cmd_session::default_profile()?,
        };
        Aws::from_keyward_profile(&profile, None).await?
    };
    let (account, arn) = aws.whoami().await?;
    let me = if who.admin {
        None
    } else {
        let name = arn.rsplit('/').next().unwrap_or_default().to_owned();
        let u = iam::get_user(&aws, &name).await?.with_context(|| {
            format!("{arn} is not a keyward machine user; use --admin with admin credentials")
        })?;
        if u.owner().is_none() {
            bail!(
                "{arn} has no {} tag; register this computer with `keyward setup`",
                docs::TAG_OWNER
            );
        }
        Some(u)
    };
    Ok(Actor {
        aws,
        account,
        arn,
        me,
    })
}

/// The keyward machine users, optionally of one owner.
async fn machine_users(aws: &Aws, owner: Option<&str>) -> Result<Vec<UserInfo>> {
    let mut users = Vec::new();
    let mut marker = None;
    loop {
        let out = aws
            .iam
            .list_users()
            .path_prefix(docs::PATH)
            .set_marker(marker.clone())
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("iam:ListUsers failed: {}", iam::describe(&e)))?;
        for u in out.users() {
            if let Some(info) = iam::get_user(aws, u.user_name()).await? {
                if info.owner().is_some() && owner.is_none_or(|o| info.owner() == Some(o)) {
                    users.push(info);
                }
            }
        }
        if out.is_truncated() {
            marker = out.marker().map(str::to_owned);
        } else {
            break;
        }
    }
    users.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(users)
}

#[derive(Serialize)]
struct MachineRow {
    machine: String,
    user: String,
    owner: String,
    created: String,
    access_key: Option<String>,
    key_age_days: Option<u64>,
    key_last_used: Option<String>,
    mfa: bool,
    groups: Vec<String>,
    buckets: Vec<String>,
    kms_keys: Vec<String>,
    revoked: Option<String>,
    this_computer: bool,
}

fn age_days(created: Option<&aws_smithy_types::DateTime>) -> Option<u64> {
    let c = SystemTime::try_from(*created?).ok()?;
    Some(
        SystemTime::now()
            .duration_since(c)
            .unwrap_or_default()
            .as_secs()
            / 86_400,
    )
}

pub fn machines(a: &MachinesArgs) -> Result<()> {
    crate::runtime()?.block_on(async {
        let actor = actor(&a.who).await?;
        let owner = if a.who.admin {
            a.owner.clone()
        } else {
            actor.owner().map(str::to_owned)
        };
        let users = machine_users(&actor.aws, owner.as_deref()).await?;
        let mut rows = Vec::new();
        for u in &users {
            let keys = actor
                .aws
                .iam
                .list_access_keys()
                .user_name(&u.name)
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("iam:ListAccessKeys failed: {}", iam::describe(&e)))?;
            let first = keys.access_key_metadata().first();
            let key_id = first.and_then(|k| k.access_key_id()).map(str::to_owned);
            let last_used = match &key_id {
                Some(id) => iam::key_last_used(&actor.aws, id).await,
                None => None,
            };
            rows.push(MachineRow {
                machine: u.tags.get(docs::TAG_MACHINE).cloned().unwrap_or_default(),
                user: u.name.clone(),
                owner: u.owner().unwrap_or_default().to_owned(),
                created: u.tags.get(docs::TAG_CREATED).cloned().unwrap_or_default(),
                access_key: key_id
                    .as_ref()
                    .map(|id| id[id.len().saturating_sub(4)..].to_owned()),
                key_age_days: age_days(first.and_then(|k| k.create_date())),
                // To the second: enough for a table, and stable in JSON.
                key_last_used: last_used.map(|t| {
                    format!(
                        "{}Z",
                        t.split('.').next().unwrap_or(&t).trim_end_matches('Z')
                    )
                }),
                mfa: !iam::mfa_devices(&actor.aws, &u.name).await?.is_empty(),
                groups: iam::groups_for_user(&actor.aws, &u.name).await?,
                buckets: u.list_tag(docs::TAG_BUCKETS),
                kms_keys: u.list_tag(docs::TAG_KMS_KEYS),
                revoked: u.tags.get(docs::TAG_REVOKED_AT).cloned(),
                this_computer: actor.me.as_ref().is_some_and(|m| m.name == u.name),
            });
        }
        if a.json {
            println!("{}", serde_json::to_string_pretty(&rows)?);
            return Ok(());
        }
        if rows.is_empty() {
            println!(
                "no keyward machines{}",
                owner.map(|o| format!(" of {o}")).unwrap_or_default()
            );
            return Ok(());
        }
        println!(
            "{:<22} {:<20} {:<6} {:>7} {:<20} {:<4} {:<18} {:<22} STATUS",
            "USER", "CREATED", "KEY", "AGE", "LAST USED", "MFA", "GROUPS", "BUCKETS/KEYS"
        );
        for r in &rows {
            let status = match (&r.revoked, r.this_computer) {
                (Some(at), _) => format!("REVOKED {at}"),
                (None, true) => "this computer".to_owned(),
                (None, false) => "active".to_owned(),
            };
            let mut policies: Vec<String> = r.buckets.iter().map(|b| format!("s3://{b}")).collect();
            policies.extend(
                r.kms_keys
                    .iter()
                    .map(|k| format!("kms:…{}", &k[k.len().saturating_sub(8)..])),
            );
            if r.revoked.is_some() && !policies.is_empty() {
                policies = vec!["(removed)".to_owned()];
            }
            println!(
                "{:<22} {:<20} {:<6} {:>7} {:<20} {:<4} {:<18} {:<22} {status}",
                r.user,
                r.created,
                r.access_key
                    .as_ref()
                    .map_or_else(|| "-".to_owned(), |k| format!("…{k}")),
                r.key_age_days
                    .map_or_else(|| "-".to_owned(), |d| format!("{d}d")),
                r.key_last_used.clone().unwrap_or_else(|| "never".into()),
                if r.mfa { "yes" } else { "NO" },
                if r.groups.is_empty() {
                    "-".into()
                } else {
                    r.groups.join(",")
                },
                if policies.is_empty() {
                    "-".into()
                } else {
                    policies.join(" ")
                },
            );
        }
        Ok(())
    })
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

pub fn revoke(a: &RevokeArgs) -> Result<()> {
    crate::runtime()?.block_on(async {
        let actor = actor(&a.who).await?;
        let owner = actor.owner().map(str::to_owned);
        let candidates = machine_users(&actor.aws, owner.as_deref()).await?;
        let wanted = [a.machine.clone(), owner.as_ref().map(|o| format!("{o}-{}", a.machine)).unwrap_or_default()];
        let Some(target) = candidates.iter().find(|u| wanted.contains(&u.name) || (a.who.admin && u.tags.get(docs::TAG_MACHINE) == Some(&a.machine) && candidates.iter().filter(|c| c.tags.get(docs::TAG_MACHINE) == Some(&a.machine)).count() == 1)).cloned() else {
            let known: Vec<&str> = candidates.iter().map(|u| u.name.as_str()).collect();
            // A machine of another owner gets its own message.
            if !a.who.admin {
                if let Some(other) = iam::get_user(&actor.aws, &a.machine).await.ok().flatten() {
                    if other.owner().is_some() && other.owner() != owner.as_deref() {
                        bail!("{} belongs to owner {}, not {}; only an admin can revoke it (`keyward revoke {} --admin`)", other.name, other.owner().unwrap_or("?"), owner.as_deref().unwrap_or("?"), other.name);
                    }
                }
            }
            bail!("no machine `{}`{}; known: {}", a.machine, owner.map(|o| format!(" of {o}")).unwrap_or_default(), if known.is_empty() { "none".into() } else { known.join(", ") });
        };
        if actor.me.as_ref().is_some_and(|m| m.name == target.name) {
            bail!("{} is this computer; to decommission it run `keyward deregister`", target.name);
        }
        if !a.who.admin && target.owner() != owner.as_deref() {
            bail!("{} belongs to another owner; only an admin can revoke it", target.name);
        }
        let mut homes = teardown::recorded_homes(&target);
        for b in &a.buckets {
            let h = PolicyHome::Bucket(b.clone());
            if !homes.contains(&h) {
                homes.push(h);
            }
        }
        for k in &a.kms_keys {
            let arn = if k.starts_with("arn:") { k.clone() } else { iam::kms_key_arn(&actor.aws, k).await?.unwrap_or_else(|| k.clone()) };
            let h = PolicyHome::Key(arn);
            if !homes.contains(&h) {
                homes.push(h);
            }
        }
        ui::heading(&format!("Revoking {} ({}) as {}", target.name, target.arn, actor.name()));
        let mut plan_lines = vec![
            format!("attach {} (deny everything to sessions issued before now)", docs::REVOKE_POLICY),
            "deactivate, then delete, every access key".to_owned(),
            "remove it from every group".to_owned(),
        ];
        for h in &homes {
            plan_lines.push(format!("remove its ARN from the {h}"));
        }
        plan_lines.push("deactivate and delete its MFA device".into());
        plan_lines.push(format!("tag it {} / {}", docs::TAG_REVOKED_AT, docs::TAG_REVOKED_BY));
        if a.purge {
            plan_lines.push("delete the IAM user".into());
        }
        for (i, l) in plan_lines.iter().enumerate() {
            eprintln!("  {}. {l}", i + 1);
        }
        if a.dry_run {
            if a.json {
                println!("{}", json!({"user": target.name, "dry_run": true, "plan": plan_lines}));
            }
            eprintln!("dry run: nothing changed");
            return Ok(());
        }
        if !a.yes && !ui::confirm(&format!("revoke {} now?", target.name))? {
            bail!("not revoked; re-run with --yes to revoke without asking");
        }
        let plan = teardown::Plan {
            user: target.clone(),
            account: actor.account.clone(),
            homes,
            revoke: Some(teardown::Revocation { now_rfc3339: now_rfc3339(), by: actor.name() }),
            purge: a.purge,
            yes: true,
        };
        let (steps, complete) = teardown::run(&actor.aws, &plan).await;
        report(a.json, &target.name, &steps, complete)?;
        if !complete {
            bail!("revocation of {} is incomplete; run `keyward revoke {} --yes` again to finish", target.name, a.machine);
        }
        Ok(())
    })
}

fn report(json_out: bool, user: &str, steps: &[teardown::Step], complete: bool) -> Result<()> {
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"user": user, "complete": complete, "steps": steps})
            )?
        );
    } else if complete {
        println!("{user} is revoked");
    } else {
        let done: Vec<&str> = steps
            .iter()
            .filter(|s| {
                matches!(
                    s.status,
                    teardown::Status::Done
                        | teardown::Status::AlreadyDone
                        | teardown::Status::Skipped
                )
            })
            .map(|s| s.step.as_str())
            .collect();
        let not: Vec<&str> = steps
            .iter()
            .filter(|s| {
                matches!(
                    s.status,
                    teardown::Status::Failed | teardown::Status::NotRun
                )
            })
            .map(|s| s.step.as_str())
            .collect();
        eprintln!("done: {}", done.join(", "));
        eprintln!("NOT done: {}", not.join(", "));
    }
    Ok(())
}

pub fn deregister(a: &DeregisterArgs) -> Result<()> {
    let profile = match &a.profile {
        Some(p) => p.clone(),
        None => crate::cmd_session::default_profile()?,
    };
    crate::runtime()?.block_on(async {
        let who = Who {
            profile: Some(profile.clone()),
            admin: false,
            admin_profile: None,
        };
        let actor = actor(&who).await?;
        let me = actor.me.clone().context("not a machine user")?;
        ui::heading(&format!(
            "Decommissioning this computer: {} ({})",
            me.name, me.arn
        ));
        if !a.yes && !ui::confirm(&format!("delete {} and every trace of it?", me.name))? {
            bail!("nothing changed; re-run with --yes to deregister without asking");
        }
        // No deny-all first: it would cut the session doing the work. This computer's
        // sessions are dropped locally instead, and its key is deleted.
        let plan = teardown::Plan {
            homes: teardown::recorded_homes(&me),
            user: me.clone(),
            account: actor.account.clone(),
            revoke: None,
            purge: true,
            yes: true,
        };
        let (steps, complete) = teardown::run(&actor.aws, &plan).await;
        if !complete {
            report(a.json, &me.name, &steps, complete)?;
            bail!("deregistration is incomplete; run `keyward deregister --yes` again to finish");
        }
        // Local traces: every profile built on this one, then the keychain entry.
        let cfg = keyward_daemon::config::Config::load(&crate::cmd_profile::config_path()?)?;
        for (name, entry) in &cfg.profiles {
            if entry.source.as_deref() == Some(profile.as_str()) {
                crate::cmd_profile::forget_profile(name)?;
            }
        }
        cmd_setup::forget_local(&profile)?;
        ui::done(
            "removed the keychain entry, keyward's profiles and their credential_process lines",
        );
        report(a.json, &me.name, &steps, complete)?;
        Ok(())
    })
}
