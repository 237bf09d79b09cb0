//! The attacker suite (DESIGN.md §3, threats T1 and T2). It takes an ordinary
//! machine's MFA session from its daemon, and separately its bare key, and tries every
//! escalation through the emulated AWS, whose IAM evaluator (iam-rs, not keyward's)
//! must deny each one, naming the action. The allowed paths are checked too: a
//! hollow model that denies everything would fail here.

use keyward_tests::e2e;
use keyward_tests::world::World;
use serde_json::{json, Value};

use crate::common::{
    account, assert_allowed, assert_denied, attack, bootstrap, call, creds_of, enroll, enroll_bare,
    key_creds, Account,
};

const A: &str = "arn:aws:iam::123456789012";

/// alice-desk (admin), alice-laptop (the victim, in dev), alice-work and alice-spare
/// (siblings), bob-laptop (another owner); targets an attacker would reach for.
fn fleet(desk: &World) -> (Account, World) {
    let acct = account(desk);
    desk.admin(&["make-roles", &acct.bucket, "dev"]);
    desk.admin(&["make-attack-targets", &acct.bucket, "dev"]);
    bootstrap(desk, &acct, "alice", "desk", true);
    let laptop = desk.sibling("laptop");
    enroll(
        desk,
        &laptop,
        "laptop",
        &[
            "--group",
            "dev",
            "--bucket",
            &acct.bucket,
            "--kms-key",
            &acct.key_arn,
        ],
    );
    for (owner, m) in [("alice", "work"), ("alice", "spare"), ("bob", "laptop")] {
        enroll_bare(desk, owner, m);
    }
    (acct, laptop)
}

fn iam(name: &str, op: &str, args: &Value) -> Value {
    call(name, "iam", op, args)
}

/// Escalations with the MFA session: (call, the action AWS must name when denying it).
fn escalations(acct: &Account) -> Vec<(Value, &'static str)> {
    let admin_policy = "arn:aws:iam::aws:policy/AdministratorAccess";
    let allow_all = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}).to_string();
    let deny_all = format!("{A}:policy/keyward/keyward-deny-all");
    let machine = format!("{A}:policy/keyward/keyward-machine");
    vec![
        (
            iam(
                "policy on itself",
                "put_user_policy",
                &json!({"UserName": "alice-laptop", "PolicyName": "x", "PolicyDocument": allow_all}),
            ),
            "iam:PutUserPolicy",
        ),
        (
            iam(
                "detach its machine policy",
                "detach_user_policy",
                &json!({"UserName": "alice-laptop", "PolicyArn": machine}),
            ),
            "iam:DetachUserPolicy",
        ),
        (
            iam(
                "delete its inline policy",
                "delete_user_policy",
                &json!({"UserName": "alice-laptop", "PolicyName": "x"}),
            ),
            "iam:DeleteUserPolicy",
        ),
        (
            iam(
                "attach admin to itself",
                "attach_user_policy",
                &json!({"UserName": "alice-laptop", "PolicyArn": admin_policy}),
            ),
            "iam:AttachUserPolicy",
        ),
        (
            iam(
                "retag itself bob's",
                "tag_user",
                &json!({"UserName": "alice-laptop", "Tags": [{"Key": "keyward-owner", "Value": "bob"}]}),
            ),
            "iam:TagUser",
        ),
        (
            iam(
                "untag its owner",
                "untag_user",
                &json!({"UserName": "alice-laptop", "TagKeys": ["keyward-owner"]}),
            ),
            "iam:UntagUser",
        ),
        (
            iam(
                "console login for itself",
                "create_login_profile",
                &json!({"UserName": "alice-laptop", "Password": "Hunter2-Hunter2"}),
            ),
            "iam:CreateLoginProfile",
        ),
        (
            iam(
                "policy on a sibling",
                "put_user_policy",
                &json!({"UserName": "alice-work", "PolicyName": "x", "PolicyDocument": allow_all}),
            ),
            "iam:PutUserPolicy",
        ),
        (
            iam(
                "retag a sibling bob's",
                "tag_user",
                &json!({"UserName": "alice-work", "Tags": [{"Key": "keyward-owner", "Value": "bob"}]}),
            ),
            "iam:TagUser",
        ),
        (
            iam(
                "a key for a sibling",
                "create_access_key",
                &json!({"UserName": "alice-work"}),
            ),
            "iam:CreateAccessKey",
        ),
        (
            iam(
                "a login for a sibling",
                "create_login_profile",
                &json!({"UserName": "alice-work", "Password": "Hunter2-Hunter2"}),
            ),
            "iam:CreateLoginProfile",
        ),
        (
            iam(
                "join the admins group",
                "add_user_to_group",
                &json!({"GroupName": "admins", "UserName": "alice-laptop"}),
            ),
            "iam:AddUserToGroup",
        ),
        (
            iam(
                "pass a powerful role",
                "add_role_to_instance_profile",
                &json!({"InstanceProfileName": "ops-profile", "RoleName": "ops-admin"}),
            ),
            "iam:PassRole",
        ),
        (
            iam(
                "rewrite the machine policy",
                "create_policy_version",
                &json!({"PolicyArn": machine, "PolicyDocument": allow_all, "SetAsDefault": true}),
            ),
            "iam:CreatePolicyVersion",
        ),
        (
            iam(
                "lift a revocation",
                "detach_user_policy",
                &json!({"UserName": "alice-work", "PolicyArn": deny_all}),
            ),
            "iam:DetachUserPolicy",
        ),
        (
            iam(
                "trust itself into admin",
                "update_assume_role_policy",
                &json!({"RoleName": "keyward-admin", "PolicyDocument": allow_all}),
            ),
            "iam:UpdateAssumeRolePolicy",
        ),
        (
            iam(
                "write the admin role",
                "put_role_policy",
                &json!({"RoleName": "keyward-admin", "PolicyName": "x", "PolicyDocument": allow_all}),
            ),
            "iam:PutRolePolicy",
        ),
        (
            iam(
                "unmark revocations",
                "untag_role",
                &json!({"RoleName": "keyward-admin", "TagKeys": ["keyward-revoked-alice"]}),
            ),
            "iam:UntagRole",
        ),
        (
            call(
                "become admin",
                "sts",
                "assume_role",
                &json!({"RoleArn": format!("{A}:role/keyward/keyward-admin"), "RoleSessionName": "attacker", "SourceIdentity": "alice-laptop"}),
            ),
            "sts:AssumeRole",
        ),
        (
            call(
                "the enroller, no session policy",
                "sts",
                "assume_role",
                &json!({"RoleArn": format!("{A}:role/keyward/keyward-enroller"), "RoleSessionName": "attacker", "SourceIdentity": "alice-laptop"}),
            ),
            "sts:AssumeRole",
        ),
        (
            call(
                "rewrite the bucket policy",
                "s3",
                "put_bucket_policy",
                &json!({"Bucket": acct.bucket, "Policy": allow_all}),
            ),
            "s3:PutBucketPolicy",
        ),
        (
            call(
                "delete the bucket policy",
                "s3",
                "delete_bucket_policy",
                &json!({"Bucket": acct.bucket}),
            ),
            "s3:DeleteBucketPolicy",
        ),
        (
            call(
                "rewrite the key policy",
                "kms",
                "put_key_policy",
                &json!({"KeyId": acct.key_arn, "PolicyName": "default", "Policy": allow_all}),
            ),
            "kms:PutKeyPolicy",
        ),
    ]
}

/// What a group's self-service rights and an open role would allow, which keyward's
/// denies must still stop (the red team's findings).
fn through_group_rights() -> Vec<(Value, &'static str)> {
    let open_role = format!("{A}:role/open-role");
    let assume = |name: &str, extra: Value| {
        let mut args = json!({"RoleArn": open_role, "RoleSessionName": "attacker"});
        args.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        call(name, "sts", "assume_role", &args)
    };
    vec![
        (
            assume("a role session without a source identity", json!({})),
            "sts:AssumeRole",
        ),
        (
            assume(
                "a role session in a sibling's name",
                json!({"SourceIdentity": "alice-work"}),
            ),
            "sts:AssumeRole",
        ),
        (
            assume(
                "a session tag that overrides the role's revocation mark",
                json!({"SourceIdentity": "alice-laptop", "Tags": [{"Key": "keyward-revoked-alice", "Value": "/"}], "TransitiveTagKeys": ["keyward-revoked-alice"]}),
            ),
            "sts:TagSession",
        ),
        (
            iam(
                "retag its owner, in other letters",
                "tag_user",
                &json!({"UserName": "alice-laptop", "Tags": [{"Key": "Keyward-Owner", "Value": "bob"}]}),
            ),
            "iam:TagUser",
        ),
        (
            iam(
                "untag its owner",
                "untag_user",
                &json!({"UserName": "alice-laptop", "TagKeys": ["keyward-owner"]}),
            ),
            "iam:UntagUser",
        ),
        (
            iam(
                "unmark a sibling's revocation, in capitals",
                "untag_user",
                &json!({"UserName": "alice-work", "TagKeys": ["KEYWARD-REVOKED-AT"]}),
            ),
            "iam:UntagUser",
        ),
        (
            iam(
                "a second MFA device of its own",
                "enable_mfa_device",
                &json!({"UserName": "alice-laptop", "SerialNumber": format!("{A}:mfa/alice-laptop-2"), "AuthenticationCode1": "123456", "AuthenticationCode2": "654321"}),
            ),
            "iam:EnableMFADevice",
        ),
        (
            iam(
                "an SSH key of its own",
                "upload_ssh_public_key",
                &json!({"UserName": "alice-laptop", "SSHPublicKeyBody": "ssh-rsa AAAAB3NzaC1yc2E attacker"}),
            ),
            "iam:UploadSSHPublicKey",
        ),
        (
            iam(
                "a console password of its own",
                "create_login_profile",
                &json!({"UserName": "alice-laptop", "Password": "Attacker-Passw0rd!"}),
            ),
            "iam:CreateLoginProfile",
        ),
    ]
}

/// Every action on bob's machine (another owner) is denied.
fn against_bob() -> Vec<(Value, &'static str)> {
    vec![
        (
            iam(
                "deny-all on bob",
                "attach_user_policy",
                &json!({"UserName": "bob-laptop", "PolicyArn": format!("{A}:policy/keyward/keyward-deny-all")}),
            ),
            "iam:AttachUserPolicy",
        ),
        (
            iam("read bob", "get_user", &json!({"UserName": "bob-laptop"})),
            "iam:GetUser",
        ),
        (
            iam(
                "list bob's keys",
                "list_access_keys",
                &json!({"UserName": "bob-laptop"}),
            ),
            "iam:ListAccessKeys",
        ),
        (
            iam(
                "deactivate bob's MFA",
                "deactivate_mfa_device",
                &json!({"UserName": "bob-laptop", "SerialNumber": format!("{A}:mfa/bob-laptop")}),
            ),
            "iam:DeactivateMFADevice",
        ),
        (
            iam(
                "delete bob's MFA",
                "delete_virtual_mfa_device",
                &json!({"SerialNumber": format!("{A}:mfa/bob-laptop")}),
            ),
            "iam:DeleteVirtualMFADevice",
        ),
        (
            iam(
                "tag bob revoked",
                "tag_user",
                &json!({"UserName": "bob-laptop", "Tags": [{"Key": "keyward-revoked-at", "Value": "x"}]}),
            ),
            "iam:TagUser",
        ),
        (
            iam(
                "mark bob's role sessions",
                "tag_role",
                &json!({"RoleName": "keyward-admin", "Tags": [{"Key": "keyward-revoked-bob", "Value": "/bob-laptop/"}]}),
            ),
            "iam:TagRole",
        ),
    ]
}

fn check_all(w: &World, creds: &Value, cases: &[(Value, &'static str)]) {
    let calls: Vec<Value> = cases.iter().map(|(c, _)| c.clone()).collect();
    let results = attack(w, creds, &json!(calls));
    assert_eq!(results.len(), cases.len());
    for ((_, action), r) in cases.iter().zip(&results) {
        assert_denied(r, action);
    }
}

e2e! {
    fn group_rights_never_undo_the_machine_policys_denies(desk) {
        let (_acct, laptop) = fleet(&desk);
        let session = creds_of(&laptop, "alice-laptop");
        check_all(&laptop, &session, &through_group_rights());
        // The open role itself is fine, naming this machine and no tags.
        let ok = attack(&laptop, &session, &json!([call("the open role, as itself", "sts", "assume_role", &json!({"RoleArn": format!("{A}:role/open-role"), "RoleSessionName": "alice-laptop", "SourceIdentity": "alice-laptop"}))]));
        assert_allowed(&ok[0]);
    }
}

e2e! {
    fn an_mfa_session_never_gains_a_right_and_never_touches_another_owner(desk) {
        let (acct, laptop) = fleet(&desk);
        let session = creds_of(&laptop, "alice-laptop");
        check_all(&laptop, &session, &escalations(&acct));
        check_all(&laptop, &session, &against_bob());
        assert_eq!(desk.admin(&["user", "alice-laptop"])["groups"], json!(["dev"]), "nothing changed");
        assert_eq!(desk.admin(&["user", "bob-laptop"])["keys"].as_array().unwrap().len(), 1);
    }
}

e2e! {
    fn the_allowed_paths_still_work_with_mfa(desk) {
        let (acct, laptop) = fleet(&desk);
        let session = creds_of(&laptop, "alice-laptop");
        let spare_key = desk.proxy.control.keys_of("alice-spare")[0].clone();
        let results = attack(&laptop, &session, &json!([
            call("data through its group", "s3", "get_object", &json!({"Bucket": acct.bucket, "Key": "secret.txt"})),
            call("write through its group", "s3", "put_object", &json!({"Bucket": acct.bucket, "Key": "new.txt", "Body": "x"})),
            call("use the key it is named in", "kms", "encrypt", &json!({"KeyId": acct.key_arn, "Plaintext": "aGk="})),
            iam("rotate: a second key of its own", "create_access_key", &json!({})),
            iam("cut off a sibling: deny-all", "attach_user_policy", &json!({"UserName": "alice-spare", "PolicyArn": format!("{A}:policy/keyward/keyward-deny-all")})),
            iam("cut off a sibling: its key", "delete_access_key", &json!({"UserName": "alice-spare", "AccessKeyId": spare_key})),
            iam("cut off a sibling: its MFA", "deactivate_mfa_device", &json!({"UserName": "alice-spare", "SerialNumber": format!("{A}:mfa/alice-spare")})),
            iam("cut off a sibling: tags", "tag_user", &json!({"UserName": "alice-spare", "Tags": [{"Key": "keyward-revoked-at", "Value": "now"}]})),
            iam("cut off a sibling: role sessions", "tag_role", &json!({"RoleName": "keyward-admin", "Tags": [{"Key": "keyward-revoked-alice", "Value": "/alice-spare/"}]})),
        ]));
        for r in &results {
            assert_allowed(r);
        }
        assert_eq!(results[0]["result"]["Body"], "the data");
        // The rotated key is the laptop's own; delete it again.
        let new_key = results[3]["result"]["AccessKey"]["AccessKeyId"].as_str().unwrap().to_owned();
        laptop.canary(results[3]["result"]["AccessKey"]["SecretAccessKey"].as_str().unwrap());
        assert_allowed(&attack(&laptop, &session, &json!([iam("delete its own new key", "delete_access_key", &json!({"AccessKeyId": new_key}))]))[0]);
    }
}

e2e! {
    fn a_key_alone_gets_an_mfa_session_and_nothing_else(desk) {
        let (acct, laptop) = fleet(&desk);
        let key = key_creds(&laptop, "alice-laptop");
        check_all(&laptop, &key, &[
            (call("read data", "s3", "get_object", &json!({"Bucket": acct.bucket, "Key": "secret.txt"})), "s3:GetObject"),
            (call("write data", "s3", "put_object", &json!({"Bucket": acct.bucket, "Key": "x", "Body": "x"})), "s3:PutObject"),
            (call("list data", "s3", "list_objects_v2", &json!({"Bucket": acct.bucket})), "s3:ListBucket"),
            (call("decrypt", "kms", "encrypt", &json!({"KeyId": acct.key_arn, "Plaintext": "aGk="})), "kms:Encrypt"),
            (iam("read itself", "get_user", &json!({})), "iam:GetUser"),
            (iam("rotate without MFA", "create_access_key", &json!({})), "iam:CreateAccessKey"),
            (call("a role", "sts", "assume_role", &json!({"RoleArn": format!("{A}:role/data-reader"), "RoleSessionName": "attacker", "SourceIdentity": "alice-laptop"})), "sts:AssumeRole"),
        ]);
        // A session without MFA is as useless; GetCallerIdentity is never denied (as in AWS).
        let plain = attack(&laptop, &key, &json!([call("session without MFA", "sts", "get_session_token", &json!({})), call("who am I", "sts", "get_caller_identity", &json!({}))]));
        assert_allowed(&plain[0]);
        assert_allowed(&plain[1]);
        let session = plain[0]["result"]["Credentials"].clone();
        check_all(&laptop, &session, &[(call("read data", "s3", "get_object", &json!({"Bucket": acct.bucket, "Key": "secret.txt"})), "s3:GetObject")]);
    }
}

e2e! {
    fn an_enrollment_code_registers_exactly_one_named_computer_once(desk) {
        let (_acct, laptop) = fleet(&desk);
        let line = desk.keyward(&["enroll", "--machine", "new", "--no-wait", "--json"]).ok().json();
        let code = line["code"].as_str().unwrap().to_owned();
        let creds = code_credentials(&desk, &code);
        check_all(&laptop, &creds, &[
            (iam("another name", "create_user", &json!({"UserName": "alice-other", "Path": "/keyward/", "Tags": [{"Key": "keyward-owner", "Value": "alice"}, {"Key": "keyward-machine", "Value": "other"}]})), "iam:CreateUser"),
            (iam("another owner", "create_user", &json!({"UserName": "bob-new", "Path": "/keyward/", "Tags": [{"Key": "keyward-owner", "Value": "bob"}, {"Key": "keyward-machine", "Value": "new"}]})), "iam:CreateUser"),
            (iam("its name, bob's tag", "create_user", &json!({"UserName": "alice-new", "Path": "/keyward/", "Tags": [{"Key": "keyward-owner", "Value": "bob"}, {"Key": "keyward-machine", "Value": "new"}]})), "iam:CreateUser"),
            (iam("a key for a sibling", "create_access_key", &json!({"UserName": "alice-work"})), "iam:CreateAccessKey"),
            (iam("a group", "add_user_to_group", &json!({"GroupName": "dev", "UserName": "alice-new"})), "iam:AddUserToGroup"),
        ]);
        // Its own registration works, exactly once.
        let totp = laptop.device_totp_command("alice-new");
        let new = desk.sibling("new");
        assert!(new.setup_enrolled(&code, &["--yes", "--mfa-process", &totp]).status.success());
        check_all(&laptop, &creds, &[
            (iam("strip its machine policy", "detach_user_policy", &json!({"UserName": "alice-new", "PolicyArn": format!("{A}:policy/keyward/keyward-machine")})), "iam:DetachUserPolicy"),
            (iam("a second key", "create_access_key", &json!({"UserName": "alice-new"})), "iam:CreateAccessKey"),
            (iam("admin rights", "attach_user_policy", &json!({"UserName": "alice-new", "PolicyArn": "arn:aws:iam::aws:policy/AdministratorAccess"})), "iam:AttachUserPolicy"),
            (iam("undo it", "delete_user", &json!({"UserName": "alice-new"})), "iam:DeleteUser"),
        ]);
    }
}

/// The session credentials inside an enrollment code (what a thief would paste).
fn code_credentials(w: &World, code: &str) -> Value {
    let payload = code.split('.').nth(1).unwrap();
    let json = data_encoding::BASE64URL_NOPAD
        .decode(payload.as_bytes())
        .unwrap();
    let v: Value = serde_json::from_slice(&json).unwrap();
    w.canary(v["secret_access_key"].as_str().unwrap());
    json!({"AccessKeyId": v["access_key_id"], "SecretAccessKey": v["secret_access_key"], "SessionToken": v["session_token"]})
}
