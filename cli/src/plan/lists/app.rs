//! `keyward app`'s steps: add, grant and revoke a member, remove.

use crate::iam::apps::{App, Runtime};
use crate::iam::resources::PolicyHome;
use crate::plan::app::AppStep;
use crate::plan::{RegisterStep, Step};

/// `keyward app add`: the key (`given_key`, or a new one), the buckets to create, the
/// group and role, the instance profile for EC2, the key and bucket policies naming
/// `members` and keeping `admins`, the admin role's whitelist, then each member's group.
pub fn app_add(
    app: &App,
    given_key: Option<String>,
    new_buckets: Vec<String>,
    members: &[String],
    admins: &[String],
) -> Vec<Step> {
    let mut out = vec![AppStep::Key {
        name: app.name.clone(),
        given: given_key,
    }];
    out.extend(
        new_buckets
            .into_iter()
            .map(|bucket| AppStep::CreateBucket { bucket }),
    );
    out.push(AppStep::Group { app: app.clone() });
    out.push(AppStep::Role {
        app: app.clone(),
        members: members.to_vec(),
    });
    if app.runtimes.contains(&Runtime::Ec2) {
        out.push(AppStep::InstanceProfile {
            name: app.name.clone(),
        });
    }
    out.push(AppStep::KeyPolicy {
        app: app.clone(),
        members: members.to_vec(),
        admins: admins.to_vec(),
    });
    out.extend(app.buckets.iter().map(|b| AppStep::Protect {
        app: app.clone(),
        bucket: b.clone(),
        members: members.to_vec(),
        admins: admins.to_vec(),
    }));
    out.push(AppStep::Whitelist { app: app.clone() });
    let mut steps: Vec<Step> = out.into_iter().map(Step::from).collect();
    steps.extend(members.iter().map(|m| {
        Step::from(RegisterStep::JoinGroup {
            user: m.clone(),
            group: app.id(),
        })
    }));
    steps
}

/// `keyward app grant`: the group, the role's trust, the key policy and each bucket's
/// whitelist; then the role guard's statement for the member's `owner`.
pub fn app_grant(app: &App, user: &str, owner: Option<&str>) -> Vec<Step> {
    let mut out: Vec<Step> = vec![
        RegisterStep::JoinGroup {
            user: user.to_owned(),
            group: app.id(),
        }
        .into(),
        AppStep::Trust {
            name: app.name.clone(),
            user: user.to_owned(),
            add: true,
        }
        .into(),
        AppStep::KeyPolicy {
            app: app.clone(),
            members: vec![user.to_owned()],
            admins: Vec::new(),
        }
        .into(),
    ];
    out.extend(app.buckets.iter().map(|b| {
        Step::from(AppStep::Protect {
            app: app.clone(),
            bucket: b.clone(),
            members: vec![user.to_owned()],
            admins: Vec::new(),
        })
    }));
    out.extend(owner.map(super::guard_owner));
    out
}

/// `keyward app revoke`: out of the group, the trust, the key and bucket policies.
pub fn app_revoke(app: &App, user: &str) -> Vec<Step> {
    let leave = |home| AppStep::LeavePolicy {
        user: user.to_owned(),
        home,
    };
    let mut out = vec![
        AppStep::LeaveGroup {
            user: user.to_owned(),
            group: app.id(),
        },
        AppStep::Trust {
            name: app.name.clone(),
            user: user.to_owned(),
            add: false,
        },
        leave(PolicyHome::Key(app.key.clone())),
    ];
    out.extend(
        app.buckets
            .iter()
            .map(|b| leave(PolicyHome::Bucket(b.clone()))),
    );
    out.into_iter().map(Step::from).collect()
}

/// `keyward app remove`: keyward's statements out of the bucket and key policies, the
/// group and role, the key's deletion when the app made it (`retire_key`), and the
/// admin role's whitelist.
pub fn app_remove(app: &App, retire_key: bool) -> Vec<Step> {
    let strip = |home| AppStep::StripPolicy { home };
    let mut out: Vec<AppStep> = app
        .buckets
        .iter()
        .map(|b| strip(PolicyHome::Bucket(b.clone())))
        .collect();
    if !app.key.is_empty() {
        out.push(strip(PolicyHome::Key(app.key.clone())));
    }
    out.push(AppStep::DeleteGroup { name: app.id() });
    out.push(AppStep::DeleteRole { name: app.id() });
    if retire_key {
        out.push(AppStep::RetireKey {
            name: app.name.clone(),
            key: app.key.clone(),
        });
    }
    out.push(AppStep::Unwhitelist {
        group: app.id(),
        key: retire_key.then(|| app.key.clone()),
    });
    out.into_iter().map(Step::from).collect()
}
