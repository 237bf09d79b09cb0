//! `keyward app add|grant|revoke|list|show|remove`: the article's "Adding an
//! application" checklist. One group for the computers that develop the app, one
//! role where it runs, one KMS key, and buckets that take only that key's uploads
//! from the whitelist.

use anyhow::{bail, Result};
use clap::{Args, Subcommand};

use super::{execute, RunMode};
use crate::actor::{self, Actor, Who};
use crate::iam::app_store;
use crate::iam::apps::{self, App, Runtime};
use crate::iam::resources::{self, PolicyHome};
use crate::iam::{users, AwsError};
use crate::names;

use crate::plan::{lists, Plan, Report};

#[path = "app_show.rs"]
mod show;

#[derive(Subcommand)]
pub enum AppCommand {
    /// Create an app: group, role, KMS key, and protections on its buckets
    Add(AddArgs),
    /// Add a computer to an app: its group, its key policy and its buckets' whitelists
    Grant(MemberArgs),
    /// Take a computer out of an app's group and whitelists
    Revoke(MemberArgs),
    /// List the apps
    List {
        /// Print JSON on stdout (for scripts)
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        who: Who,
    },
    /// An app's members, role, key and buckets, and any drift from what keyward wrote
    Show {
        /// The app's name
        name: String,
        /// Print JSON on stdout (for scripts)
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        who: Who,
    },
    /// Delete an app's group, role and key, and its statements in bucket policies
    Remove(RemoveArgs),
}

#[derive(Args)]
pub struct AddArgs {
    #[command(flatten)]
    run: RunMode,
    /// The app's name: lowercase letters, digits and hyphens
    name: String,
    /// A bucket of the app (repeatable)
    #[arg(long = "bucket", value_name = "B")]
    buckets: Vec<String>,
    /// Create the buckets that do not exist yet
    #[arg(long)]
    create_bucket: bool,
    /// Use this existing symmetric KMS key (ARN, id or alias)
    #[arg(long, value_name = "K", conflicts_with = "create_key")]
    kms_key: Option<String>,
    /// Create a new KMS key for the app (the default)
    #[arg(long)]
    create_key: bool,
    /// Where the app runs: the service its role trusts (repeatable)
    #[arg(long = "runtime", value_enum, value_name = "R")]
    runtimes: Vec<Runtime>,
    /// A computer that develops the app, by its IAM user, e.g. alice-laptop (repeatable)
    #[arg(long = "machine", value_name = "M")]
    machines: Vec<String>,
    #[command(flatten)]
    who: Who,
}

#[derive(Args)]
pub struct MemberArgs {
    #[command(flatten)]
    run: RunMode,
    /// The app's name
    name: String,
    /// The machine (`work`) or its IAM user (`alice-work`)
    machine: String,
    /// Its owner (default: this computer's owner)
    #[arg(long)]
    owner: Option<String>,
    #[command(flatten)]
    who: Who,
}

#[derive(Args)]
pub struct RemoveArgs {
    #[command(flatten)]
    run: RunMode,
    /// The app's name
    name: String,
    /// Remove it even though its buckets hold objects (their key is scheduled for deletion)
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    who: Who,
}

pub fn run(cmd: AppCommand) -> Result<()> {
    crate::runtime()?.block_on(async {
        match cmd {
            AppCommand::Add(a) => add(&a).await,
            AppCommand::Grant(a) => member(&a, true).await,
            AppCommand::Revoke(a) => member(&a, false).await,
            AppCommand::List { json, who } => show::list(&who, json).await,
            AppCommand::Show { name, json, who } => show::show(&who, &name, json).await,
            AppCommand::Remove(a) => remove(&a).await,
        }
    })
}

/// Everything `app add` can check before any call that changes something.
async fn check_input(
    actor: &Actor,
    a: &AddArgs,
) -> Result<(Option<String>, Vec<String>, Vec<String>)> {
    let refuse = |m: String| anyhow::anyhow!("{m}. Nothing was changed.");
    apps::check_name(&a.name).map_err(refuse)?;
    if a.buckets.is_empty() {
        bail!("an app needs at least one --bucket B (add --create-bucket to make it). Nothing was changed.");
    }
    for b in &a.buckets {
        apps::check_bucket_name(b).map_err(refuse)?;
    }
    if !actor.cx.bootstrap {
        // Nothing here may read what the checks need; the plan shows what is pending.
        return Ok((a.kms_key.clone(), Vec::new(), a.machines.clone()));
    }
    let aws = actor.reader();
    let account = &actor.cx.arns.account;
    let key = match &a.kms_key {
        None => None,
        Some(k) => {
            let Some(info) = app_store::describe_key(aws, k).await? else {
                bail!("--kms-key {k}: there is no such key in account {account}; leave it out to create one. Nothing was changed.");
            };
            if !info.arn.contains(&format!(":{account}:")) {
                bail!("--kms-key {k} belongs to another account; an app's key must be in {account}. Nothing was changed.");
            }
            if !info.symmetric {
                bail!("--kms-key {k} is not a symmetric encryption key; S3 encrypts only with those. Nothing was changed.");
            }
            Some(info.arn)
        }
    };
    let mut new_buckets = Vec::new();
    for b in &a.buckets {
        match bucket_owner(aws, b, account).await? {
            BucketState::Ours => {}
            BucketState::Missing if a.create_bucket => new_buckets.push(b.clone()),
            BucketState::Missing => bail!("there is no bucket s3://{b}; add --create-bucket to create it. Nothing was changed."),
            BucketState::Foreign => bail!("s3://{b} belongs to another account; keyward protects only buckets of account {account}. Nothing was changed."),
        }
    }
    let mut machines = Vec::new();
    for m in &a.machines {
        let user = m.clone();
        match users::get_user(aws, &user).await? {
            Some(u) if u.is_machine() && u.revoked_at().is_none() => machines.push(user),
            Some(_) => bail!("--machine {m}: {user} is not an active keyward machine. Nothing was changed."),
            None => bail!("--machine {m}: there is no machine {user}; see `keyward machines`. Nothing was changed."),
        }
    }
    Ok((key, new_buckets, machines))
}

enum BucketState {
    Ours,
    Missing,
    Foreign,
}

async fn bucket_owner(
    aws: &crate::clients::Aws,
    bucket: &str,
    account: &str,
) -> Result<BucketState> {
    match aws
        .s3
        .head_bucket()
        .bucket(bucket)
        .expected_bucket_owner(account)
        .send()
        .await
    {
        Ok(_) => Ok(BucketState::Ours),
        Err(e) => match e.raw_response().map(|r| r.status().as_u16()) {
            Some(404) => Ok(BucketState::Missing),
            Some(403) if resources::bucket_exists(aws, bucket).await.unwrap_or(false) => {
                Ok(BucketState::Ours)
            }
            Some(403) => Ok(BucketState::Foreign),
            _ => Err(AwsError::new("s3:HeadBucket", &e)
                .reworded(|d| format!("cannot look at s3://{bucket}: {d}"))
                .into()),
        },
    }
}

async fn add(a: &AddArgs) -> Result<()> {
    let actor = actor::as_machine(&a.who, a.run.yes, a.run.json).await?;
    let (given_key, new_buckets, machines) = check_input(&actor, a).await?;
    let aws = actor.reader();
    let key = match &given_key {
        Some(k) => k.clone(),
        None => app_store::app_key(aws, &a.name)
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| apps::NEW_KEY.to_owned()),
    };
    for b in a.buckets.iter().filter(|_| actor.cx.bootstrap) {
        if let Ok(Some(text)) = resources::read_policy(aws, &PolicyHome::Bucket(b.clone())).await {
            let doc = crate::iam::policy::parse(Some(&text))?;
            if let Some(other) = apps::bucket_app(&doc, &actor.cx.arns).filter(|o| *o != a.name) {
                bail!("s3://{b} already belongs to app {other}; an app's bucket takes one key. Nothing was changed.");
            }
        }
    }
    let admins = account_admin(&actor).await;
    let mut runtimes = a.runtimes.clone();
    runtimes.sort();
    runtimes.dedup();
    let app = App {
        name: a.name.clone(),
        buckets: a.buckets.clone(),
        key,
        runtimes,
    };
    let plan = Plan::of(
        format!("app {}", a.name),
        lists::app_add(&app, given_key, new_buckets, &machines, &admins),
    );
    if !a.run.json {
        show::print_documents(&actor.cx.arns, &app, &machines, &admins);
    }
    let report = execute(&plan, &actor.cx, a.run).await?;
    finish(
        &report,
        &format!("keyward app add {}", a.name),
        &a.name,
        true,
    )?;
    if !a.run.json && !a.run.dry_run {
        if report.changed() {
            println!(
                "app {} is ready; on a member computer: `keyward profile add {} --app {}`",
                a.name, a.name, a.name
            );
        } else {
            println!("nothing changed: app {} was already in place", a.name);
        }
    }
    Ok(())
}

/// The account admin running this (an IAM user or role, not root): it keeps managing
/// the app's bucket and key policies, which deny everyone else.
async fn account_admin(actor: &Actor) -> Vec<String> {
    let arn = &actor.cx.actor;
    if !actor.cx.bootstrap || arn.ends_with(":root") {
        return Vec::new();
    }
    if arn.contains(":user/") {
        return vec![arn.clone()];
    }
    // An assumed role: its role's ARN (with its path) is what aws:PrincipalArn holds.
    let Some(role) = arn
        .split("assumed-role/")
        .nth(1)
        .and_then(|r| r.split('/').next())
    else {
        return Vec::new();
    };
    let aws = actor.reader();
    match aws.iam.get_role().role_name(role).send().await {
        Ok(out) => out
            .role()
            .map(|r| vec![r.arn().to_owned()])
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

/// Ends a run: a failure or a pending step says how to finish or undo.
fn finish(report: &Report, again: &str, name: &str, undo: bool) -> Result<()> {
    if report.failed() {
        let undo = if undo {
            format!(", or `keyward app remove {name} --admin-profile P` to undo what was made")
        } else {
            String::new()
        };
        bail!("app {name}: stopped at a failed step; run `{again}` again to finish it{undo}");
    }
    if !report.pending().is_empty() {
        bail!("app {name}: some steps need another identity (see above). Creating or removing an app writes IAM policies, which only the account's admin may do: run `{again} --admin-profile P` with the account's admin credentials");
    }
    Ok(())
}

async fn member(a: &MemberArgs, grant: bool) -> Result<()> {
    let actor = actor::as_machine(&a.who, a.run.yes, a.run.json).await?;
    let Some(admin) = actor.cx.admin.as_ref() else {
        bail!("changing an app's members needs an admin: run it on an admin computer, or with --admin-profile");
    };
    let Some(rec) = app_store::read_app(admin, &actor.cx.arns, &a.name).await? else {
        bail!("there is no app {}; see `keyward app list`", a.name);
    };
    let owner = a.owner.clone().or_else(|| actor.owner().map(str::to_owned));
    let user = names::resolve_machine(owner.as_deref(), &a.machine);
    let target = users::get_user(admin, &user).await?;
    let verb = if grant { "grant" } else { "revoke" };
    let steps = if grant {
        match &target {
            Some(u) if u.is_machine() && u.revoked_at().is_none() && u.is_enrolled() => {}
            _ => bail!("{user} is not a registered, active keyward machine; see `keyward machines`. Nothing was changed."),
        }
        lists::app_grant(&rec.app, &user, target.as_ref().and_then(|t| t.owner()))
    } else {
        lists::app_revoke(&rec.app, &user)
    };
    let plan = Plan::of(format!("app {}: {verb} {user}", a.name), steps);
    let report = execute(&plan, &actor.cx, a.run).await?;
    if report.failed() {
        bail!(
            "stopped at a failed step; run `keyward app {verb} {} {}` again to finish",
            a.name,
            a.machine
        );
    }
    if !a.run.json && !a.run.dry_run && !report.changed() {
        println!(
            "nothing changed: {user} was already {}",
            if grant { "a member" } else { "out of the app" }
        );
    }
    Ok(())
}

async fn remove(a: &RemoveArgs) -> Result<()> {
    let actor = actor::as_machine(&a.who, a.run.yes, a.run.json).await?;
    let aws = actor.reader();
    let Some(rec) = app_store::read_app(aws, &actor.cx.arns, &a.name).await? else {
        bail!("there is no app {}; see `keyward app list`", a.name);
    };
    for b in &rec.app.buckets {
        if a.force {
            break;
        }
        match aws.s3.list_objects_v2().bucket(b).max_keys(1).send().await {
            Ok(o) if o.key_count().unwrap_or(0) == 0 => {}
            Ok(_) => bail!("s3://{b} holds objects encrypted with the app's key; removing the app schedules that key's deletion. Move the data first, or pass --force. Nothing was changed."),
            Err(e) => return Err(AwsError::new("s3:ListObjectsV2", &e).reworded(|d| format!("cannot tell whether s3://{b} holds objects ({d}); removing the app schedules its key's deletion. Check the bucket, then pass --force. Nothing was changed.")).into()),
        }
    }
    let ours = !rec.app.key.is_empty()
        && app_store::key_is_ours(aws, &rec.app.key, &a.name)
            .await
            .unwrap_or(false);
    let plan = Plan::of(
        format!("remove app {}", a.name),
        lists::app_remove(&rec.app, ours),
    );
    let report = execute(&plan, &actor.cx, a.run).await?;
    finish(
        &report,
        &format!("keyward app remove {}", a.name),
        &a.name,
        false,
    )?;
    if !a.run.json && !a.run.dry_run {
        println!("app {} is removed; its buckets and their data stay", a.name);
    }
    Ok(())
}
