//! `keyward app list` and `keyward app show`: what an app is in AWS, and where that
//! drifted from what keyward wrote. Also the documents `app add` shows first.

use anyhow::{bail, Result};
use serde_json::{json, Value};

use crate::actor::{self, Who};
use crate::clients::Aws;
use crate::iam::app_store::{self, AppRecord};
use crate::iam::apps::{self, App};
use crate::iam::documents::{self as docs, Arns};
use crate::iam::policy::{self, Keepers};
use crate::iam::resources::{self, PolicyHome};

pub async fn list(who: &Who, json: bool) -> Result<()> {
    let actor = actor::as_machine(who, true, true).await?;
    let aws = actor.reader();
    let mut out = Vec::new();
    for name in app_store::app_names(aws).await? {
        if let Some(rec) = app_store::read_app(aws, &actor.cx.arns, &name).await? {
            out.push(rec);
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    if out.is_empty() {
        println!("no apps yet; `keyward app add NAME --bucket B` makes one");
    }
    for r in &out {
        println!(
            "{:<20} {} member(s)  buckets: {}",
            r.app.name,
            r.members.len(),
            r.app.buckets.join(", ")
        );
    }
    Ok(())
}

pub async fn show(who: &Who, name: &str, as_json: bool) -> Result<()> {
    let actor = actor::as_machine(who, true, true).await?;
    let aws = actor.reader();
    let Some(rec) = app_store::read_app(aws, &actor.cx.arns, name).await? else {
        bail!("there is no app {name}; see `keyward app list`");
    };
    let (drift, kept) = drift(aws, &actor.cx.arns, &rec).await?;
    if as_json {
        let mut v = serde_json::to_value(&rec)?;
        v["drift"] = json!(drift);
        v["foreign_statements"] = json!(kept);
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let runtimes: Vec<&str> = rec.app.runtimes.iter().map(|r| r.service()).collect();
    println!("app {name}");
    println!(
        "  role      {} (trusted by: {})",
        rec.role_arn,
        if runtimes.is_empty() {
            "members only".into()
        } else {
            runtimes.join(", ")
        }
    );
    println!(
        "  instance  {}",
        if rec.instance_profile {
            "profile holds the role"
        } else {
            "no instance profile"
        }
    );
    println!("  key       {} ({})", rec.app.key, rec.app.alias());
    println!("  buckets   {}", rec.app.buckets.join(", "));
    println!(
        "  members   {}",
        if rec.members.is_empty() {
            "none".into()
        } else {
            rec.members.join(", ")
        }
    );
    for k in &kept {
        println!("  kept      {k}");
    }
    if drift.is_empty() {
        println!("  drift     none: everything is as keyward wrote it");
    } else {
        for d in &drift {
            println!("  DRIFT     {d}");
        }
        println!("`keyward app add {name} --admin-profile P` with the same options rewrites keyward's statements");
    }
    Ok(())
}

/// Where the app differs from what keyward wrote, and the foreign statements kept.
async fn drift(aws: &Aws, a: &Arns, rec: &AppRecord) -> Result<(Vec<String>, Vec<String>)> {
    let app = &rec.app;
    let mut out = Vec::new();
    if app_store::group_policy(aws, &app.id()).await? != Some(apps::group_policy(a, app)) {
        out.push(format!("group {}: its policy is not keyward's", app.id()));
    }
    let trusted = apps::trust_members(&rec.trust);
    if rec.trust != apps::role_trust(a, app, &trusted) {
        out.push(format!("role {}: its trust policy was edited", app.id()));
    }
    if !same_set(trusted.clone(), rec.members.clone()) {
        out.push(format!(
            "role {}: its trust names other machines than the group's members",
            app.id()
        ));
    }
    if rec.role_policy.as_ref() != Some(&apps::role_policy(app)) {
        out.push(format!("role {}: its data policy was edited", app.id()));
    }
    if rec.boundary.as_deref() != Some(a.policy(docs::ROLE_GUARD_POLICY).as_str()) {
        out.push(format!("role {}: keyward-role-guard is not its boundary, so revocation does not reach its sessions", app.id()));
    }
    let members: Vec<String> = rec.members.iter().map(|m| a.user(m)).collect();
    let same = |named: Vec<String>| same_set(named, members.clone());
    let mut kept = Vec::new();
    let key_home = PolicyHome::Key(app.key.clone());
    match read(aws, &key_home).await? {
        None => out.push(format!("the key {} is gone", app.key)),
        Some(doc) => {
            let keepers = [a.root(), a.role(docs::ADMIN_ROLE)];
            if apps::key_doc(&doc, &keepers, &rec.role_arn, &[]) != doc {
                out.push(format!(
                    "the {key_home}: keyward's role statement is missing or edited"
                ));
            }
            if !same(policy::machines(&doc)) {
                out.push(format!(
                    "the {key_home} names other machines than the group's members"
                ));
            }
        }
    }
    let (root, admin) = (a.root(), a.role(docs::ADMIN_ROLE));
    let keep = Keepers {
        account_root: &root,
        admin_role: &admin,
    };
    for b in &app.buckets {
        let home = PolicyHome::Bucket(b.clone());
        let Some(doc) = read(aws, &home).await? else {
            out.push(format!("s3://{b} is gone"));
            continue;
        };
        if apps::bucket_doc(&doc, b, &keep, &[], &rec.role_arn, &app.key, &[]) != doc {
            out.push(format!(
                "the {home}: keyward's protections are missing or edited"
            ));
        }
        if !same(policy::machines(&doc)) {
            out.push(format!(
                "the {home} names other machines than the group's members"
            ));
        }
        for st in policy::foreign_statements(&doc) {
            kept.push(format!(
                "{home}: {}",
                st["Sid"].as_str().unwrap_or("(no Sid)")
            ));
        }
    }
    Ok((out, kept))
}

fn same_set(mut left: Vec<String>, mut right: Vec<String>) -> bool {
    left.sort();
    right.sort();
    left == right
}

async fn read(aws: &Aws, home: &PolicyHome) -> Result<Option<Value>> {
    match resources::read_policy(aws, home).await {
        Ok(t) => Ok(Some(policy::parse(t.as_deref())?)),
        Err(resources::ReadError::NotFound) => Ok(None),
        Err(resources::ReadError::Other(e)) => Err(home.unreadable(e)),
    }
}

/// Every document `app add` writes, before it asks.
pub fn print_documents(a: &Arns, app: &App, names: &[String], admins: &[String]) {
    let role = a.role(&app.id());
    let members: Vec<String> = names.iter().map(|m| a.user(m)).collect();
    let mut keepers = vec![a.root(), a.role(docs::ADMIN_ROLE)];
    keepers.extend(admins.iter().cloned());
    let (root, admin) = (a.root(), a.role(docs::ADMIN_ROLE));
    let keep = Keepers {
        account_root: &root,
        admin_role: &admin,
    };
    let empty = policy::parse(None).expect("an empty policy parses");
    let mut docs: Vec<(String, Value)> = vec![
        (
            format!("group {} policy {}", app.id(), apps::POLICY),
            apps::group_policy(a, app),
        ),
        (
            format!("role {} trust policy", app.id()),
            apps::role_trust(a, app, names),
        ),
        (
            format!("role {} policy {}", app.id(), apps::POLICY),
            apps::role_policy(app),
        ),
        (
            format!(
                "key policy of {} (keyward's statements; the others stay)",
                app.alias()
            ),
            apps::key_doc(&apps::new_key_policy(a), &keepers, &role, &members),
        ),
    ];
    for b in &app.buckets {
        docs.push((
            format!("bucket policy of s3://{b} (keyward's statements; the others stay)"),
            apps::bucket_doc(&empty, b, &keep, admins, &role, &app.key, &members),
        ));
    }
    for (title, doc) in docs {
        println!("# {title}\n{}", policy::to_text(&doc));
    }
}
