//! The steps of `keyward app add|revoke|remove`. Creating an app's pieces needs the
//! account's admin: they are IAM policies whose content IAM cannot bound, so an admin
//! role able to write them would be an account admin. Taking a machine out of an app
//! is a whitelist edit, the admin role's.

use anyhow::{bail, Context, Result};
use serde_json::Value;

use super::{Cx, FlowStep, Needs, State, StepId};

#[path = "app_role.rs"]
mod role;
use crate::clients::Aws;
use crate::iam::apps::{self, App};
use crate::iam::documents::Whitelists;
use crate::iam::resources::{self, Edit, PolicyHome, ReadError};
use crate::iam::{account, app_store, policy, roles, users};

#[derive(Debug, Clone)]
pub enum AppStep {
    /// The app's key and alias: created, or an existing key given the alias.
    Key {
        name: String,
        given: Option<String>,
    },
    CreateBucket {
        bucket: String,
    },
    Group {
        app: App,
    },
    /// The role; `members` join its trust (others already there stay).
    Role {
        app: App,
        members: Vec<String>,
    },
    /// One member in or out of the role's trust (a whitelist edit).
    Trust {
        name: String,
        user: String,
        add: bool,
    },
    InstanceProfile {
        name: String,
    },
    /// `admins`: account admins (besides root and keyward's admin role) who keep
    /// managing the key and buckets.
    KeyPolicy {
        app: App,
        members: Vec<String>,
        admins: Vec<String>,
    },
    Protect {
        app: App,
        bucket: String,
        members: Vec<String>,
        admins: Vec<String>,
    },
    Whitelist {
        app: App,
    },
    /// The removed app's group and key out of the admin role's whitelists.
    Unwhitelist {
        group: String,
        key: Option<String>,
    },
    LeaveGroup {
        user: String,
        group: String,
    },
    LeavePolicy {
        user: String,
        home: PolicyHome,
    },
    StripPolicy {
        home: PolicyHome,
    },
    DeleteRole {
        name: String,
    },
    DeleteGroup {
        name: String,
    },
    RetireKey {
        name: String,
        key: String,
    },
}

impl FlowStep for AppStep {
    fn id(&self) -> StepId {
        match self {
            AppStep::Key { .. } => StepId::AppKey,
            AppStep::CreateBucket { .. } => StepId::AppBucket,
            AppStep::Group { .. } => StepId::AppGroup,
            AppStep::Role { .. } => StepId::AppRole,
            AppStep::Trust { .. } => StepId::AppTrust,
            AppStep::Unwhitelist { .. } => StepId::AppUnwhitelist,
            AppStep::InstanceProfile { .. } => StepId::AppInstanceProfile,
            AppStep::KeyPolicy { .. } => StepId::AppKeyPolicy,
            AppStep::Protect { .. } => StepId::AppBucketPolicy,
            AppStep::Whitelist { .. } => StepId::AppWhitelist,
            AppStep::LeaveGroup { .. } => StepId::LeaveGroup,
            AppStep::LeavePolicy { .. } => StepId::LeavePolicy,
            AppStep::StripPolicy { .. } => StepId::AppStripPolicy,
            AppStep::DeleteRole { .. } => StepId::AppDeleteRole,
            AppStep::DeleteGroup { .. } => StepId::AppDeleteGroup,
            AppStep::RetireKey { .. } => StepId::AppRetireKey,
        }
    }

    fn needs(&self) -> Needs {
        match self {
            // Whitelist edits: the admin role may make them once the app is whitelisted.
            AppStep::KeyPolicy { .. }
            | AppStep::Protect { .. }
            | AppStep::Trust { .. }
            | AppStep::LeaveGroup { .. }
            | AppStep::LeavePolicy { .. } => Needs::Admin,
            _ => Needs::Bootstrap,
        }
    }

    fn label(&self) -> String {
        match self {
            AppStep::Key { name, given: None } => format!("KMS key {}", apps::alias(name)),
            AppStep::Key {
                name,
                given: Some(k),
            } => format!("KMS key {k} as {}", apps::alias(name)),
            AppStep::CreateBucket { bucket } => format!("bucket s3://{bucket}"),
            AppStep::Group { app } => format!("group {} and its data policy", app.id()),
            AppStep::Role { app, .. } => {
                format!("role {} (trust, data policy, role guard)", app.id())
            }
            AppStep::Trust {
                name,
                user,
                add: true,
            } => {
                format!("{user}: trusted by role {}", apps::id(name))
            }
            AppStep::Trust {
                name,
                user,
                add: false,
            } => {
                format!("{user}: out of role {}'s trust", apps::id(name))
            }
            AppStep::Unwhitelist { group, .. } => {
                format!("admin computers no longer manage {group} and its key")
            }
            AppStep::InstanceProfile { name } => format!("instance profile {}", apps::id(name)),
            AppStep::KeyPolicy { app, .. } => {
                format!("key policy of {}: the role and each member", app.alias())
            }
            AppStep::Protect { bucket, .. } => {
                format!("bucket policy of s3://{bucket}: this key only, whitelist only")
            }
            AppStep::Whitelist { app } => {
                format!("admin computers may add and remove members of {}", app.id())
            }
            AppStep::LeaveGroup { user, group } => format!("{user}: leave group {group}"),
            AppStep::LeavePolicy { user, home } => format!("{user}: leave the {home}"),
            AppStep::StripPolicy { home } => format!("keyward's statements out of the {home}"),
            AppStep::DeleteRole { name } => format!("delete role and instance profile {name}"),
            AppStep::DeleteGroup { name } => format!("delete group {name}"),
            AppStep::RetireKey { key, .. } => format!("schedule deletion of {key} (30 days)"),
        }
    }

    async fn check(&self, cx: &Cx) -> Result<State> {
        let aws = cx.aws(self.needs())?;
        let todo = |s: &str| Ok(State::ToDo(s.to_owned()));
        let done = |s: &str| Ok(State::Done(s.to_owned()));
        match self {
            AppStep::Key { name, given } => match app_store::app_key(aws, name).await? {
                Some(k) if given.as_ref().is_none_or(|g| *g == k) => done(&k),
                Some(k) => bail!(
                    "{} already names another key, {k}; choose that key or another app name",
                    apps::alias(name)
                ),
                None if given.is_some() => todo("give it the app's alias"),
                None => todo("create a symmetric key whose policy keeps the account root"),
            },
            AppStep::CreateBucket { bucket } => {
                if resources::bucket_exists(aws, bucket).await? {
                    done("exists")
                } else {
                    todo("create it")
                }
            }
            AppStep::Group { app } => {
                let foreign = app_store::foreign_in_group(aws, &app.id()).await?;
                if !foreign.is_empty() {
                    bail!("group {} already exists with {}; keyward will not take it over (its members would get the app's data, and admin computers could add anyone to it). Choose another app name.", app.id(), foreign.join(", "));
                }
                let want = apps::group_policy(&cx.arns, &live(aws, app).await?);
                match app_store::group_policy(aws, &app.id()).await? {
                    Some(d) if d == want => done("up to date"),
                    Some(_) => todo("rewrite its policy"),
                    None => todo("create it with its policy"),
                }
            }
            AppStep::Role { app, members } => {
                role::check(aws, cx, &live(aws, app).await?, members).await
            }
            AppStep::Trust { name, user, add } => {
                role::check_trust(aws, cx, name, user, *add).await
            }
            AppStep::Unwhitelist { group, key } => {
                let w = account::whitelists(aws).await?;
                if w.groups.contains(group) || key.as_ref().is_some_and(|k| w.kms_keys.contains(k))
                {
                    todo("take them out")
                } else {
                    done("not whitelisted")
                }
            }
            AppStep::InstanceProfile { name } => {
                match app_store::instance_profile(aws, &apps::id(name)).await? {
                    Some(true) => done("holds the role"),
                    Some(false) => todo("add the role"),
                    None => todo("create it with the role"),
                }
            }
            AppStep::KeyPolicy { .. }
            | AppStep::Protect { .. }
            | AppStep::LeavePolicy { .. }
            | AppStep::StripPolicy { .. } => {
                let (home, edit) = self.policy_edit(aws, cx).await?;
                let must_exist =
                    matches!(self, AppStep::KeyPolicy { .. } | AppStep::Protect { .. });
                policy_state(aws, &home, edit, must_exist).await
            }
            AppStep::Whitelist { app } => {
                let have = account::whitelists(aws).await?;
                let mut want = have.clone();
                if want.extend(&app_whitelists(&live(aws, app).await?)) {
                    todo("add the group, the buckets and the key")
                } else {
                    done("whitelisted")
                }
            }
            AppStep::LeaveGroup { user, group } => {
                if users::groups_for_user(aws, user).await?.contains(group) {
                    todo("remove it")
                } else {
                    done("not a member")
                }
            }
            AppStep::DeleteRole { name } => match roles::get_role(aws, name).await? {
                Some(_) => todo("delete it"),
                None => done("gone"),
            },
            AppStep::DeleteGroup { name } => {
                if users::group_exists(aws, name).await? {
                    todo("delete it")
                } else {
                    done("gone")
                }
            }
            AppStep::RetireKey { key, .. } => match app_store::describe_key(aws, key).await? {
                Some(k) if k.enabled => todo("schedule its deletion"),
                _ => done("disabled or pending deletion"),
            },
        }
    }

    async fn apply(&self, cx: &Cx) -> Result<String> {
        let aws = cx.aws(self.needs())?;
        match self {
            AppStep::Key { name, given: None } => {
                let arn = app_store::create_key(aws, &cx.arns, name).await?;
                Ok(format!("created {arn}"))
            }
            AppStep::Key {
                name,
                given: Some(k),
            } => {
                app_store::alias_key(aws, name, k).await?;
                Ok(format!("{} names {k}", apps::alias(name)))
            }
            AppStep::CreateBucket { bucket } => {
                aws.s3
                    .create_bucket()
                    .bucket(bucket)
                    .send()
                    .await
                    .map_err(|e| crate::iam::fail("s3:CreateBucket", &e))?;
                Ok("created".into())
            }
            AppStep::Group { app } => {
                let doc = apps::group_policy(&cx.arns, &live(aws, app).await?);
                app_store::put_group_policy(aws, &app.id(), &doc).await?;
                Ok(format!("{} grants the app's data and role", app.id()))
            }
            AppStep::Role { app, members } => {
                role::make(aws, cx, &live(aws, app).await?, members).await
            }
            AppStep::Trust { name, user, add } => role::set_trust(aws, cx, name, user, *add).await,
            AppStep::Unwhitelist { group, key } => {
                let mut w = account::whitelists(aws).await?;
                w.groups.retain(|g| g != group);
                w.kms_keys.retain(|k| Some(k) != key.as_ref());
                account::set_whitelists(aws, &cx.arns, &w).await?;
                Ok("taken out".into())
            }
            AppStep::InstanceProfile { name } => {
                app_store::make_instance_profile(aws, &apps::id(name)).await?;
                Ok("holds the role".into())
            }
            AppStep::KeyPolicy { .. }
            | AppStep::Protect { .. }
            | AppStep::LeavePolicy { .. }
            | AppStep::StripPolicy { .. } => {
                let (home, edit) = self.policy_edit(aws, cx).await?;
                apply_edit(aws, cx, &home, edit).await
            }
            AppStep::Whitelist { app } => {
                let mut w = account::whitelists(aws).await?;
                w.extend(&app_whitelists(&live(aws, app).await?));
                account::set_whitelists(aws, &cx.arns, &w).await?;
                Ok("the admin role may edit its group, bucket and key policies".into())
            }
            AppStep::LeaveGroup { user, group } => {
                users::remove_from_group(aws, user, group).await?;
                Ok("left".into())
            }
            AppStep::DeleteRole { name } => {
                app_store::delete_role(aws, name).await?;
                Ok("deleted".into())
            }
            AppStep::DeleteGroup { name } => {
                app_store::delete_group(aws, name).await?;
                Ok("deleted".into())
            }
            AppStep::RetireKey { name, key } => {
                app_store::retire_key(aws, name, key).await?;
                Ok("deletion scheduled in 30 days; `aws kms cancel-key-deletion` undoes it".into())
            }
        }
    }
}

impl AppStep {
    /// The policy a policy step edits, and its pure edit.
    async fn policy_edit(
        &self,
        aws: &Aws,
        cx: &Cx,
    ) -> Result<(PolicyHome, Box<dyn Fn(&Value) -> Value + Send + Sync>)> {
        let arns = cx.arns.clone();
        Ok(match self {
            AppStep::KeyPolicy {
                app,
                members,
                admins,
            } => {
                let app = live(aws, app).await?;
                let role = arns.role(&app.id());
                let members: Vec<String> = members.iter().map(|m| arns.user(m)).collect();
                let (root, admin) = super::account::keepers(&arns);
                let mut keepers = vec![root, admin];
                keepers.extend(admins.iter().cloned());
                (
                    PolicyHome::Key(app.key.clone()),
                    Box::new(move |d| apps::key_doc(d, &keepers, &role, &members)),
                )
            }
            AppStep::Protect {
                app,
                bucket,
                members,
                admins,
            } => {
                let admins = admins.clone();
                let app = live(aws, app).await?;
                let role = arns.role(&app.id());
                let members: Vec<String> = members.iter().map(|m| arns.user(m)).collect();
                let b = bucket.clone();
                let key = app.key.clone();
                let edit = move |d: &Value| {
                    let (root, admin) = super::account::keepers(&arns);
                    let keep = policy::Keepers {
                        account_root: &root,
                        admin_role: &admin,
                    };
                    apps::bucket_doc(d, &b, &keep, &admins, &role, &key, &members)
                };
                (PolicyHome::Bucket(bucket.clone()), Box::new(edit))
            }
            AppStep::LeavePolicy { user, home } => {
                let arn = arns.user(user);
                (
                    home.clone(),
                    Box::new(move |d| policy::remove_principal(d, &arn)),
                )
            }
            AppStep::StripPolicy { home } => (home.clone(), Box::new(policy::without_owned)),
            _ => unreachable!("only policy steps edit policies"),
        })
    }
}

/// The app with its key's ARN, once the key exists (a dry run shows a placeholder).
async fn live(aws: &Aws, app: &App) -> Result<App> {
    if app.key != apps::NEW_KEY {
        return Ok(app.clone());
    }
    let key = app_store::app_key(aws, &app.name)
        .await?
        .with_context(|| format!("the app's key {} does not exist yet", app.alias()))?;
    Ok(App { key, ..app.clone() })
}

fn app_whitelists(app: &App) -> Whitelists {
    Whitelists {
        groups: vec![app.id()],
        buckets: app.buckets.clone(),
        kms_keys: vec![app.key.clone()],
    }
}

async fn policy_state(
    aws: &Aws,
    home: &PolicyHome,
    edit: impl Fn(&Value) -> Value,
    must_exist: bool,
) -> Result<State> {
    let text = match resources::read_policy(aws, home).await {
        Ok(t) => t,
        Err(ReadError::NotFound) if must_exist => {
            return Ok(State::ToDo(
                "write it once the earlier steps made it".into(),
            ))
        }
        Err(ReadError::NotFound) => return Ok(State::Done(format!("the {home} is gone"))),
        Err(ReadError::Other(e)) => return Err(home.unreadable(e)),
    };
    let doc = policy::parse(text.as_deref())?;
    Ok(if edit(&doc) == doc {
        State::Done("up to date".into())
    } else {
        State::ToDo("rewrite keyward's statements; keep the others".into())
    })
}

async fn apply_edit(
    aws: &Aws,
    cx: &Cx,
    home: &PolicyHome,
    edit: impl Fn(&Value) -> Value,
) -> Result<String> {
    let kept = match resources::read_policy(aws, home).await {
        Ok(t) => policy::parse(t.as_deref())
            .map(|d| policy::foreign_statements(&d))
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    Ok(match resources::edit_policy(aws, home, cx, edit).await? {
        Edit::Changed if kept.is_empty() => "written".into(),
        Edit::Changed => {
            let sids: Vec<String> = kept
                .iter()
                .map(|s| s["Sid"].as_str().unwrap_or("(no Sid)").to_owned())
                .collect();
            format!(
                "written; kept {} statement(s) keyward does not own: {}",
                kept.len(),
                sids.join(", ")
            )
        }
        Edit::Unchanged => "already up to date".into(),
        Edit::Gone => bail!("the {home} disappeared"),
    })
}
