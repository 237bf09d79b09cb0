//! The seven steps of the demo.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use anyhow::{bail, Context, Result};

use super::{show, step, took, World};

const GROUP_POLICY: &str = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetObject", "s3:PutObject"], "Resource": ["arn:aws:s3:::alice-data", "arn:aws:s3:::alice-data/*"]}]}"#;

/// The account's admin prepares a group (with rights on the bucket), a bucket and a KMS key.
fn prepare_account(w: &World, c: usize) -> Result<String> {
    let root = |args: &[&str]| {
        let mut cmd = w.aws_cli(c, args);
        cmd.env("AWS_ACCESS_KEY_ID", crate::aws::ROOT_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", crate::aws::ROOT_SECRET)
            .args(["--region", "us-east-1", "--output", "text"]);
        cmd
    };
    for args in [
        &["iam", "create-group", "--group-name", "developers"][..],
        &[
            "iam",
            "put-group-policy",
            "--group-name",
            "developers",
            "--policy-name",
            "data",
            "--policy-document",
            GROUP_POLICY,
        ],
        &["s3api", "create-bucket", "--bucket", "alice-data"],
    ] {
        let out = root(args).output().context("cannot run the AWS CLI")?;
        if !out.status.success() {
            bail!(
                "preparing the account failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    let out = root(&["kms", "create-key", "--query", "KeyMetadata.Arn"]).output()?;
    if !out.status.success() {
        bail!(
            "creating the KMS key failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

pub fn run(w: &World, laptop: usize, work: usize) -> Result<()> {
    let t = step(1, "Start an emulated AWS that enforces IAM: moto, with keyward's emulator in front (it also plays alice's phone)");
    let key = {
        let _wait = super::Waiting::start("creating the account's group, bucket and KMS key");
        prepare_account(w, laptop)?
    };
    println!(
        "      emulated AWS at {}; group `developers`, bucket s3://alice-data, KMS key ready",
        w.endpoint()
    );
    took(t);

    let t = step(2, "Set up alice's laptop, her first computer and admin: user alice-laptop, MFA, group, bucket and key policies, key into its keychain");
    setup_laptop(w, laptop, &key)?;
    took(t);

    let t = step(
        3,
        "Log in with MFA: one code, one STS session held in keywardd's memory",
    );
    show(
        &w.keyward(laptop, &["login", "--profile", "alice-laptop"])
            .output()?,
        "keyward login",
        3,
    )?;
    took(t);

    let t = step(
        4,
        "The AWS CLI through credential_process: who am I, and the data my group allows",
    );
    use_aws_cli(w, laptop)?;
    took(t);

    let t = step(
        5,
        "Enroll alice's work computer: a 15-minute code from the laptop, then pairing",
    );
    enroll_work(w, laptop, work)?;
    took(t);

    let t = step(
        6,
        "The laptop is stolen: revoke it from the work computer (an ordinary one)",
    );
    show(
        &w.keyward(work, &["revoke", "laptop", "--yes"]).output()?,
        "keyward revoke",
        12,
    )?;
    took(t);

    let t = step(
        7,
        "The laptop's key and sessions are refused; the account's admin finishes the cleanup",
    );
    after_revocation(w, laptop, work)?;
    took(t);
    Ok(())
}

/// Step 2: the first computer sets up the account pieces and becomes its admin.
fn setup_laptop(w: &World, laptop: usize, key: &str) -> Result<()> {
    let phone = w.phone("alice-laptop");
    let out = w
        .keyward_as_root(
            laptop,
            &[
                "setup",
                "--owner",
                "alice",
                "--machine",
                "laptop",
                "--group",
                "developers",
                "--bucket",
                "alice-data",
                "--kms-key",
                key,
                "--admin",
                "--yes",
                "--mfa-process",
                &phone,
            ],
        )
        .output()?;
    show(&out, "keyward setup", 16)?;
    Ok(())
}

/// Step 4: the AWS CLI gets its credentials the way a user's ~/.aws/config gives them.
fn use_aws_cli(w: &World, laptop: usize) -> Result<()> {
    let cfg =
        std::fs::read_to_string(w.computers[laptop].home.join(".aws/config")).unwrap_or_default();
    for l in cfg
        .lines()
        .filter(|l| l.contains("credential_process") || l.starts_with("[profile alice-laptop"))
    {
        println!("      ~/.aws/config: {l}");
    }
    show(
        &w.aws_cli(
            laptop,
            &[
                "--profile",
                "alice-laptop",
                "sts",
                "get-caller-identity",
                "--output",
                "text",
            ],
        )
        .output()?,
        "aws sts get-caller-identity",
        2,
    )?;
    show(
        &w.aws_cli(
            laptop,
            &[
                "--profile",
                "alice-laptop",
                "s3api",
                "list-objects-v2",
                "--bucket",
                "alice-data",
                "--output",
                "json",
            ],
        )
        .output()?,
        "aws s3api list-objects-v2",
        2,
    )?;
    Ok(())
}

/// Step 7: the stolen laptop is refused, and the root credentials finish what an
/// ordinary computer may not do.
fn after_revocation(w: &World, laptop: usize, work: usize) -> Result<()> {
    let out = w.keyward(laptop, &["status", "--check"]).output()?;
    for l in String::from_utf8_lossy(&out.stdout).lines().take(2) {
        println!("      │ {l}");
    }
    let out = w
        .keyward(laptop, &["credential-process", "--profile", "alice-laptop"])
        .output()?;
    if out.status.success() {
        bail!("the revoked laptop still got credentials");
    }
    for l in String::from_utf8_lossy(&out.stderr).lines().take(1) {
        println!("      │ {l}");
    }
    show(
        &w.keyward_as_root(work, &["revoke", "alice-laptop", "--admin", "--yes"])
            .output()?,
        "keyward revoke --admin",
        6,
    )?;
    show(
        &w.keyward(work, &["machines"]).output()?,
        "keyward machines",
        4,
    )?;
    Ok(())
}

/// `keyward enroll` on the laptop prints a code; `keyward setup --enroll` on the work
/// computer reads it from stdin (never a command line); both show the pairing code.
fn enroll_work(w: &World, laptop: usize, work: usize) -> Result<()> {
    let mut admin = w.keyward(
        laptop,
        &[
            "enroll",
            "--machine",
            "work",
            "--group",
            "developers",
            "--bucket",
            "alice-data",
            "--yes",
            "--json",
        ],
    );
    admin.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = admin.spawn().context("cannot run keyward enroll")?;
    let mut stdout = BufReader::new(child.stdout.take().context("stdout")?);
    let mut first = zeroize::Zeroizing::new(String::new());
    stdout.read_line(&mut first)?;
    let line: serde_json::Value =
        serde_json::from_str(&first).context("keyward enroll printed no code")?;
    let code = zeroize::Zeroizing::new(line["code"].as_str().unwrap_or_default().to_owned());
    drop(line);
    println!(
        "      │ code: {}… (a secret: piped, never put on a command line)",
        &code[..12.min(code.len())]
    );
    let phone = w.phone("alice-work");
    let mut setup = w.keyward(
        work,
        &["setup", "--enroll", "--yes", "--mfa-process", &phone],
    );
    setup
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut new = setup.spawn().context("cannot run keyward setup --enroll")?;
    std::io::Write::write_all(
        new.stdin.as_mut().context("stdin")?,
        format!("{}\n", code.as_str()).as_bytes(),
    )?;
    drop(code);
    show(&new.wait_with_output()?, "keyward setup --enroll", 12)?;
    let out = child.wait_with_output()?;
    show(&out, "keyward enroll", 6)?;
    Ok(())
}
