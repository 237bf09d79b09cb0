//! `keyward setup`'s steps: the first computer (with the account's admin, which also
//! makes the account's pieces) and a later one (with an enrollment code).

use keyward_daemon::config::ProfileEntry;

use super::whitelists;
use crate::iam::documents::Whitelists;
use crate::local::profiles;
use crate::plan::{AccountStep, LocalStep, RegisterStep, Step};

/// The computer being registered, and the profiles it gets.
#[derive(Debug, Clone)]
pub struct Registration {
    pub user: String,
    pub owner: String,
    pub machine: String,
    pub profile: String,
    /// The profile's entry (MFA serial, user, region, session length).
    pub entry: ProfileEntry,
    /// With `--admin`: the admin profile's entry; the computer becomes an admin one.
    pub admin_entry: Option<ProfileEntry>,
}

/// A bootstrap setup: `account` (the account's pieces, from [`super::init`]), the
/// computer, its whitelists, its key, and this computer's profiles and daemon.
pub fn setup_bootstrap(
    account: Vec<Step>,
    r: &Registration,
    grants: &Whitelists,
    enforce: bool,
) -> Vec<Step> {
    let mut out = account;
    out.extend(registration(r));
    out.extend(whitelists(&r.user, grants, enforce));
    out.extend(key_and_mark(r));
    if r.admin_entry.is_some() {
        out.push(
            AccountStep::DesignateAdmin {
                user: r.user.clone(),
            }
            .into(),
        );
    }
    out.extend(this_computer(r));
    out
}

/// A setup with an enrollment code: the code's session registers the computer; the
/// whitelists it names are the admin computer's to grant, so they come after the key.
pub fn setup_enrolled(r: &Registration, grants: &Whitelists) -> Vec<Step> {
    let mut out = registration(r);
    out.extend(key_and_mark(r));
    out.extend(whitelists(&r.user, grants, false));
    out.extend(this_computer(r));
    out
}

/// What every registration takes, by whoever has the registrar's rights.
fn registration(r: &Registration) -> Vec<Step> {
    let user = || r.user.clone();
    vec![
        RegisterStep::CreateUser {
            user: user(),
            owner: r.owner.clone(),
            machine: r.machine.clone(),
        }
        .into(),
        RegisterStep::AttachMachinePolicy { user: user() }.into(),
        RegisterStep::EnableMfa { user: user() }.into(),
    ]
}

fn key_and_mark(r: &Registration) -> Vec<Step> {
    vec![
        RegisterStep::StoreKey {
            user: r.user.clone(),
            profile: r.profile.clone(),
        }
        .into(),
        LocalStep::AwaitKey {
            profile: r.profile.clone(),
        }
        .into(),
        RegisterStep::MarkEnrolled {
            user: r.user.clone(),
        }
        .into(),
    ]
}

fn this_computer(r: &Registration) -> Vec<Step> {
    let mut out: Vec<Step> = vec![LocalStep::WriteProfile {
        profile: r.profile.clone(),
        entry: Box::new(r.entry.clone()),
        aws_config: true,
    }
    .into()];
    if let Some(entry) = &r.admin_entry {
        out.push(
            LocalStep::WriteProfile {
                profile: profiles::admin_profile_name(&r.profile),
                entry: Box::new(entry.clone()),
                aws_config: false,
            }
            .into(),
        );
    }
    out.push(LocalStep::StartDaemon.into());
    out
}
