//! The broker core, driven the way AWS tools drive it.

use std::process::Output;

use keyward_tests::world::{which, World};

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn assert_ok(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        o.status,
        stdout(o),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn process_json(o: &Output) -> serde_json::Value {
    assert_ok(o, "credential_process");
    serde_json::from_slice(&o.stdout).expect("stdout is exactly the credential_process JSON")
}

#[test]
fn aws_cli_and_boto3_get_user_and_role_arns() {
    let Some(w) = World::new("aws_cli_and_boto3_get_user_and_role_arns") else { return };
    if which("aws").is_none() {
        keyward_tests::world::skip(&w.test, "the AWS CLI (`aws`) is not on PATH");
        return;
    }
    let m = w.machine("alice-laptop", Some("deploy"));
    let role_arn = m.role_arn.clone().expect("role");
    w.keyward_ok(&["profile", "add", "deploy", "--role-arn", &role_arn, "--source", "alice-laptop"]);

    // The AWS CLI, through the credential_process lines keyward wrote.
    let out = w.aws("alice-laptop", &["sts", "get-caller-identity"]);
    assert_ok(&out, "aws sts get-caller-identity (base)");
    let id: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(id["Arn"], m.user_arn, "the base profile acts as the machine user");

    let out = w.aws("deploy", &["sts", "get-caller-identity"]);
    assert_ok(&out, "aws sts get-caller-identity (role)");
    let id: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let arn = id["Arn"].as_str().unwrap();
    assert!(arn.contains(":assumed-role/deploy/keyward-alice-laptop"), "{arn}");

    // boto3, same config file.
    let v = w.admin_as_user(&["caller", "alice-laptop"]);
    assert_eq!(v, m.user_arn);
    let v = w.admin_as_user(&["caller", "deploy"]);
    assert!(v.as_str().unwrap().contains(":assumed-role/deploy/"), "{v}");

    // One MFA session served all of it.
    assert_eq!(w.proxy.control.count("GetSessionToken"), 1);
    assert_eq!(w.proxy.control.count("AssumeRole"), 1);

    // The config line is what a user would have.
    let cfg = std::fs::read_to_string(w.home.join(".aws/config")).unwrap();
    assert!(cfg.contains("[profile deploy]\ncredential_process = "), "{cfg}");
    assert!(cfg.contains("keyward-credential-process --profile deploy"), "{cfg}");
    // The plaintext key was scrubbed after the verified import.
    let creds = std::fs::read_to_string(w.home.join(".aws/credentials")).unwrap();
    assert!(!creds.contains(&m.access_key_id), "{creds}");
    w.assert_no_leaks();
}
