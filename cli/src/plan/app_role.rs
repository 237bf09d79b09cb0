//! The app's role: created with its trust, data policy and the role guard as its
//! boundary; members added to or taken out of its trust.

use anyhow::{bail, Result};

use crate::clients::Aws;
use crate::iam::apps::{self, App};
use crate::iam::documents as docs;
use crate::iam::{roles, users};
use crate::plan::{Cx, State};

/// The members the role should trust: those it trusts now, plus `add`.
async fn members(aws: &Aws, app: &App, add: &[String]) -> Result<Vec<String>> {
    let mut out = match roles::get_role(aws, &app.id()).await? {
        Some(r) => apps::trust_members(&r.trust),
        None => Vec::new(),
    };
    for m in add {
        if !out.contains(m) {
            out.push(m.clone());
        }
    }
    Ok(out)
}

pub async fn check(aws: &Aws, cx: &Cx, app: &App, add: &[String]) -> Result<State> {
    let id = app.id();
    let Some(role) = roles::get_role(aws, &id).await? else {
        return Ok(State::ToDo("create it".into()));
    };
    if role.tags.get(apps::TAG_APP) != Some(&app.name) {
        bail!("role {id} exists but keyward did not make it for this app; choose another app name");
    }
    let mut diff = Vec::new();
    if role.trust != apps::role_trust(&cx.arns, app, &members(aws, app, add).await?) {
        diff.push("trust policy");
    }
    if roles::inline_policy(aws, &id, apps::POLICY).await? != Some(apps::role_policy(app)) {
        diff.push("data policy");
    }
    if role.boundary.as_deref() != Some(cx.arns.policy(docs::ROLE_GUARD_POLICY).as_str()) {
        diff.push("permissions boundary");
    }
    Ok(if diff.is_empty() {
        State::Done("up to date".into())
    } else {
        State::ToDo(format!("update its {}", diff.join(", ")))
    })
}

pub async fn make(aws: &Aws, cx: &Cx, app: &App, add: &[String]) -> Result<String> {
    let id = app.id();
    let trust = apps::role_trust(&cx.arns, app, &members(aws, app, add).await?);
    let guard = cx.arns.policy(docs::ROLE_GUARD_POLICY);
    if roles::get_role(aws, &id).await?.is_none() {
        aws.iam
            .create_role()
            .role_name(&id)
            .path(docs::PATH)
            .description(format!("keyward app {}: where it runs", app.name))
            .assume_role_policy_document(trust.to_string())
            .permissions_boundary(&guard)
            .max_session_duration(3600)
            .tags(users::tag(apps::TAG_APP, &app.name))
            .send()
            .await
            .map_err(|e| crate::iam::fail("iam:CreateRole", &e))?;
    } else {
        roles::set_trust(aws, &id, &trust).await?;
        roles::set_boundary(aws, &id, &guard).await?;
    }
    roles::put_inline_policy(aws, &id, apps::POLICY, &apps::role_policy(app)).await?;
    Ok(format!("{} is ready", cx.arns.role(&id)))
}

/// The trust with `user` in or out, and the app it belongs to.
async fn edited_trust(
    aws: &Aws,
    cx: &Cx,
    name: &str,
    user: &str,
    add: bool,
) -> Result<(serde_json::Value, serde_json::Value)> {
    let id = apps::id(name);
    let Some(role) = roles::get_role(aws, &id).await? else {
        bail!("there is no role {id}; `keyward app add {name}` makes it");
    };
    let mut members = apps::trust_members(&role.trust);
    if !add {
        members.retain(|m| m != user);
    } else if !members.iter().any(|m| m == user) {
        members.push(user.to_owned());
    }
    let app = App {
        name: name.to_owned(),
        buckets: Vec::new(),
        key: String::new(),
        runtimes: apps::trust_runtimes(&role.trust),
    };
    Ok((role.trust, apps::role_trust(&cx.arns, &app, &members)))
}

pub async fn check_trust(aws: &Aws, cx: &Cx, name: &str, user: &str, add: bool) -> Result<State> {
    let (now, want) = edited_trust(aws, cx, name, user, add).await?;
    let listed = apps::trust_members(&now).iter().any(|m| m == user);
    Ok(if listed == add && (!add || now == want) {
        State::Done(if add { "trusted" } else { "not trusted" }.into())
    } else {
        State::ToDo(if add { "add it" } else { "take it out" }.into())
    })
}

pub async fn set_trust(aws: &Aws, cx: &Cx, name: &str, user: &str, add: bool) -> Result<String> {
    let (_, want) = edited_trust(aws, cx, name, user, add).await?;
    roles::set_trust(aws, &apps::id(name), &want).await?;
    Ok(if add { "trusted" } else { "taken out" }.into())
}
