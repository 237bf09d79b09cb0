//! Each command's step ids, as `--json` reports them: the order is behaviour.

use keyward_daemon::clock::Clock;
use keyward_daemon::config::ProfileEntry;

use super::*;
use crate::account::{AccountState, Request};
use crate::iam::apps::{App, Runtime};
use crate::iam::documents::Arns;
use crate::plan::Needs;

fn names(steps: &[Step]) -> Vec<String> {
    ids(steps)
        .iter()
        .map(|id| {
            serde_json::to_value(id)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

fn grants() -> Whitelists {
    Whitelists {
        groups: vec!["dev".into()],
        buckets: vec!["data".into()],
        kms_keys: vec!["arn:aws:kms:us-east-1:1:key/k".into()],
    }
}

fn registration(admin: bool) -> Registration {
    Registration {
        user: "alice-laptop".into(),
        owner: "alice".into(),
        machine: "laptop".into(),
        profile: "alice-laptop".into(),
        entry: ProfileEntry::default(),
        admin_entry: admin.then(ProfileEntry::default),
    }
}

fn empty_account() -> AccountState {
    AccountState {
        arns: Arns::new("123456789012"),
        machine_policy: None,
        role_guard: None,
        admin_policy: None,
        admin_trust: None,
        old_self_service: None,
        machines: Vec::new(),
    }
}

fn app() -> App {
    App {
        name: "web".into(),
        buckets: vec!["web-data".into()],
        key: "arn:aws:kms:us-east-1:1:key/k".into(),
        runtimes: vec![Runtime::Ec2],
    }
}

const INIT: [&str; 5] = [
    "role_guard_policy",
    "deny_all_policy",
    "machine_policy",
    "admin_role",
    "enroller_role",
];

#[test]
fn init_makes_the_pieces_then_guards_and_upgrades() {
    let req = Request {
        guard_roles: vec!["deploy".into()],
        ..Request::default()
    };
    let mut want = INIT.to_vec();
    want.push("guard_role");
    assert_eq!(
        names(&init(
            &empty_account(),
            &req,
            Clock::at("2030-01-01T00:00:00Z")
        )),
        want
    );
}

#[test]
fn setup_lists() {
    let account = init(
        &empty_account(),
        &Request::default(),
        Clock::at("2030-01-01T00:00:00Z"),
    );
    let boot = setup_bootstrap(account, &registration(true), &grants(), true);
    let mut want = INIT.to_vec();
    want.extend([
        "create_user",
        "attach_machine_policy",
        "enable_mfa",
        "join_group",
        "name_in_policy",
        "name_in_policy",
        "store_key",
        "await_key",
        "mark_enrolled",
        "designate_admin",
        "write_profile",
        "write_profile",
        "start_daemon",
    ]);
    assert_eq!(names(&boot), want);
    let enrolled = setup_enrolled(&registration(false), &grants());
    let want = [
        "create_user",
        "attach_machine_policy",
        "enable_mfa",
        "store_key",
        "await_key",
        "mark_enrolled",
        "join_group",
        "name_in_policy",
        "name_in_policy",
        "write_profile",
        "start_daemon",
    ];
    assert_eq!(names(&enrolled), want);
}

#[test]
fn cut_off_orders() {
    let revoke = CutOff::Revoke {
        owner: "alice".into(),
        designated: true,
        extra: Vec::new(),
        purge: true,
    };
    let want = [
        "attach_deny_all",
        "mark_role_sessions",
        "delete_keys",
        "remove_mfa",
        "tag_revoked",
        "leave_groups",
        "leave_policies",
        "record_revoked_source",
        "undesignate_admin",
        "delete_user",
    ];
    assert_eq!(names(&cut_off("alice-old", revoke)), want);
    let deregister = CutOff::Deregister {
        owner: "alice".into(),
        profile: "alice-old".into(),
    };
    let want = [
        "leave_groups",
        "leave_policies",
        "tag_revoked",
        "remove_mfa",
        "mark_role_sessions",
        "delete_keys",
        "attach_deny_all",
        "forget_local",
    ];
    assert_eq!(names(&cut_off("alice-old", deregister)), want);
    let abort = CutOff::Abort {
        bootstrap: false,
        profile: "alice-new".into(),
    };
    let steps = cut_off("alice-new", abort);
    let want = ["delete_keys", "remove_mfa", "delete_user", "forget_local"];
    assert_eq!(names(&steps), want);
    assert!(steps[..3].iter().all(|s| s.needs() == Needs::Registrar));
}

#[test]
fn only_marking_role_sessions_may_fail_without_stopping() {
    let how = CutOff::Deregister {
        owner: "alice".into(),
        profile: "p".into(),
    };
    for step in cut_off("alice-old", how) {
        let marks = step.id() == StepId::MarkRoleSessions;
        assert_eq!(step.stops_on_failure(), !marks, "{}", step.id());
    }
}

#[test]
fn grant_enroll_rotate_access_lists() {
    let want = [
        "join_group",
        "name_in_policy",
        "name_in_policy",
        "guard_owner",
    ];
    assert_eq!(
        names(&grant("alice-work", &grants(), false, Some("alice"))),
        want
    );
    assert_eq!(names(&[guard_owner("bob")]), ["guard_owner"]);
    let r = Rotation {
        profile: "p".into(),
        user: "alice-laptop".into(),
    };
    let want = [
        "rotate_tidy",
        "rotate_new_key",
        "rotate_accepted",
        "rotate_switch",
        "rotate_delete_old",
        "rotate_drop_staging",
    ];
    assert_eq!(names(&rotate(&r)), want);
    assert_eq!(names(&access_enable("dev")), ["jit_role", "jit_whitelist"]);
    let g = Grant {
        group: "dev".into(),
        machine: "alice-laptop".into(),
        until: chrono::DateTime::UNIX_EPOCH,
    };
    assert_eq!(names(&access_change(&g, true)), ["jit_guard", "jit_trust"]);
}

#[test]
fn app_lists() {
    let members = vec!["alice-laptop".to_owned()];
    let add = app_add(&app(), None, vec!["web-data".into()], &members, &[]);
    let want = [
        "app_key",
        "app_bucket",
        "app_group",
        "app_role",
        "app_instance_profile",
        "app_key_policy",
        "app_bucket_policy",
        "app_whitelist",
        "join_group",
    ];
    assert_eq!(names(&add), want);
    let want = [
        "join_group",
        "app_trust",
        "app_key_policy",
        "app_bucket_policy",
        "guard_owner",
    ];
    assert_eq!(names(&app_grant(&app(), "bob-work", Some("bob"))), want);
    let want = ["leave_group", "app_trust", "leave_policy", "leave_policy"];
    assert_eq!(names(&app_revoke(&app(), "bob-work")), want);
    let want = [
        "app_strip_policy",
        "app_strip_policy",
        "app_delete_group",
        "app_delete_role",
        "app_retire_key",
        "app_unwhitelist",
    ];
    assert_eq!(names(&app_remove(&app(), true)), want);
}

#[test]
fn audit_fix_takes_each_step_once() {
    let fixes = [
        FixPlan::LeaveGroups {
            user: "alice-old".into(),
        },
        FixPlan::Revoke {
            user: "alice-old".into(),
            owner: "alice".into(),
        },
    ];
    let steps = audit_fix(&fixes, &[]);
    assert_eq!(names(&steps).len(), 8, "{:?}", names(&steps));
    assert_eq!(names(&steps)[0], "leave_groups");
}

/// Each command's step ids, as checked-in files beside the documents
/// (`docs/iam/steps/`): a change in what a command does is a diff in review.
#[test]
fn step_lists_match_docs_iam_steps() {
    use crate::iam::rendered::{check_file, folder, text, BLESS};
    let at = Clock::at("2030-01-01T00:00:00Z");
    let init_steps = init(&empty_account(), &Request::default(), at);
    let members = vec!["alice-laptop".to_owned()];
    let revoke = CutOff::Revoke {
        owner: "alice".into(),
        designated: false,
        extra: Vec::new(),
        purge: false,
    };
    let deregister = CutOff::Deregister {
        owner: "alice".into(),
        profile: "alice-old".into(),
    };
    let abort = CutOff::Abort {
        bootstrap: false,
        profile: "alice-new".into(),
    };
    let rotation = Rotation {
        profile: "alice-laptop".into(),
        user: "alice-laptop".into(),
    };
    let mut enroll = vec![guard_owner("alice")];
    enroll.extend(whitelists("alice-work", &grants(), false));
    let lists: Vec<(&str, Vec<Step>)> = vec![
        ("init", init_steps.clone()),
        (
            "setup",
            setup_bootstrap(init_steps, &registration(true), &grants(), false),
        ),
        ("enroll", enroll),
        (
            "setup-enroll",
            setup_enrolled(&registration(false), &grants()),
        ),
        (
            "grant",
            grant("alice-work", &grants(), false, Some("alice")),
        ),
        ("revoke", cut_off("alice-old", revoke)),
        ("deregister", cut_off("alice-old", deregister)),
        ("setup-abort", cut_off("alice-new", abort)),
        (
            "app-add",
            app_add(&app(), None, vec!["web-data".into()], &members, &[]),
        ),
        ("rotate", rotate(&rotation)),
        ("access-enable", access_enable("ops")),
    ];
    let problems: Vec<String> = lists
        .iter()
        .filter_map(|(name, steps)| {
            let path = folder().join("steps").join(format!("{name}.json"));
            check_file(&path, &text(&serde_json::json!(names(steps))))
        })
        .collect();
    assert!(
        problems.is_empty(),
        "{}\n\nIf the change is intended, run `{BLESS}` and review the diff of docs/iam/.",
        problems.join("\n\n")
    );
}
