//! A computer with no desktop session: no D-Bus, no Secret Service. Setup picks the
//! encrypted file store, the AWS CLI works through it, and no file holds the key.

use std::os::unix::fs::PermissionsExt as _;

use keyward_daemon::keychain::{EncryptedFileStore, KeyStore as _};
use keyward_tests::e2e;
use keyward_tests::world::World;
use serde_json::Value;

use crate::common::account;

const PASSPHRASE: &str = "correct horse battery staple";

fn key_files(w: &World) -> EncryptedFileStore {
    EncryptedFileStore::new(w.home.join(".local/share/keyward/keys"))
}

/// `keyward setup` of alice-vm (root credentials, the emulated phone), the
/// passphrase on stdin: a `Cmd` to finish with `.ok()` or `.fails()`.
fn setup_vm<'w>(w: &'w World, bucket: &str, passphrase: &str) -> keyward_tests::cmd::Cmd<'w> {
    let totp = w.device_totp_command("alice-vm");
    let mut c = w.keyward_admin(&[
        "setup",
        "--owner",
        "alice",
        "--machine",
        "vm",
        "--group",
        "dev",
        "--bucket",
        bucket,
        "--yes",
        "--mfa-process",
        &totp,
        "--passphrase-stdin",
    ]);
    c.stdin(format!("{passphrase}\n").into_bytes());
    c
}

fn arn_of(out: &std::process::Output) -> Value {
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("aws: {}", String::from_utf8_lossy(&out.stderr)));
    v["Arn"].clone()
}

e2e! {
    fn setup_on_a_headless_machine_uses_an_encrypted_key_file_and_the_aws_cli_works(w: headless) {
        let acct = account(&w);
        let out = setup_vm(&w, &acct.bucket, PASSPHRASE).ok();
        assert!(
            out.stderr
                .contains("key store: encrypted-file, because no OS keychain is reachable"),
            "{}",
            out.stderr
        );
        assert!(
            !out.stderr.contains("install gnome-keyring"),
            "{}",
            out.stderr
        );

        // The key is in its file (0600, sealed) and open in the kernel keyring.
        let files = key_files(&w);
        let path = files.path("alice-vm");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let key = files.get("alice-vm").unwrap().expect("unlocked by setup");
        w.canary(key.expose_secret());
        let u = w.admin(&["user", "alice-vm"]);
        assert_eq!(
            u["keys"],
            serde_json::json!([key.id]),
            "the file holds the user's only key"
        );

        let id = w.aws("alice-vm", &["sts", "get-caller-identity"]);
        assert_eq!(
            arn_of(&id),
            u["arn"],
            "the AWS CLI acts as the machine user"
        );
        assert_eq!(
            w.admin_as_user(&["caller", "alice-vm"]),
            u["arn"],
            "boto3 too"
        );

        // A re-run keeps the file's passphrase: the wrong one changes nothing.
        let e = setup_vm(&w, &acct.bucket, "another passphrase entirely")
            .fails()
            .stderr;
        assert!(
            e.contains("opens only with its passphrase") && e.contains("nothing was changed"),
            "{e}"
        );
        setup_vm(&w, &acct.bucket, PASSPHRASE).ok();
        assert_eq!(
            files.get("alice-vm").unwrap().unwrap().id,
            key.id,
            "the same key, still open"
        );

        let doc = w.keyward(&["doctor", "--offline", "--json"]).output();
        let doc: Value = serde_json::from_slice(&doc.stdout).unwrap();
        let line = |name: &str| {
            doc["checks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["name"] == name)
                .cloned()
                .unwrap()
        };
        assert!(
            line("key-store")["detail"]
                .as_str()
                .unwrap()
                .contains("encrypted file"),
            "{doc}"
        );
        assert_eq!(line("key")["status"], "ok", "{doc}");
        assert_eq!(
            line("keychain")["status"],
            "ok",
            "the missing Secret Service is not needed: {doc}"
        );

        // Rotation on the file store: a new key in a new file, same passphrase; one key left.
        let e = w
            .keyward(&["rotate", "--profile", "alice-vm", "--passphrase-stdin"])
            .stdin(b"not the passphrase\n".to_vec())
            .fails()
            .stderr;
        assert!(e.contains("opens only with its passphrase"), "{e}");
        w.keyward(&["rotate", "--profile", "alice-vm", "--passphrase-stdin"])
            .stdin(format!("{PASSPHRASE}\n").into_bytes())
            .ok();
        let rotated = files.get("alice-vm").unwrap().expect("the new key is open");
        w.canary(rotated.expose_secret());
        assert_ne!(rotated.id, key.id);
        assert_eq!(
            w.admin(&["user", "alice-vm"])["keys"],
            serde_json::json!([rotated.id])
        );
        assert!(!files.exists("alice-vm.rotating"), "no staged copy is left");
        w.keyward(&["lock"]).ok();
        w.keyward(&["unlock", "--profile", "alice-vm", "--passphrase-stdin"])
            .stdin(format!("{PASSPHRASE}\n").into_bytes())
            .ok();
        let id = w.aws("alice-vm", &["sts", "get-caller-identity"]);
        assert_eq!(arn_of(&id), u["arn"], "the AWS CLI works with the new key");
        assert_eq!(line("key-store")["status"], "ok", "{doc}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let doc = w.keyward(&["doctor", "--offline", "--json"]).output();
        let doc: Value = serde_json::from_slice(&doc.stdout).unwrap();
        let store = doc["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "key-store")
            .unwrap();
        assert_eq!(
            store["status"], "warn",
            "a readable key file is reported: {store}"
        );
    }
}

e2e! {
    fn a_locked_key_file_names_unlock_and_a_wrong_passphrase_changes_nothing(w: headless) {
        let acct = account(&w);
        setup_vm(&w, &acct.bucket, PASSPHRASE).ok();
        let key = key_files(&w).get("alice-vm").unwrap().unwrap();
        w.canary(key.expose_secret());

        // `keyward lock` forgets the sessions and closes the file: as after a reboot.
        let locked = w.keyward(&["lock"]).ok().stdout;
        assert!(
            locked.contains("locked the key file of `alice-vm`"),
            "{locked}"
        );
        let out = w.helper("alice-vm");
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && e.contains("keyward unlock --profile alice-vm"),
            "{e}"
        );
        let doc = w.keyward(&["doctor", "--offline", "--json"]).output();
        assert!(String::from_utf8_lossy(&doc.stdout).contains("keyward unlock --profile alice-vm"));

        let wrong = w
            .keyward(&["unlock", "--passphrase-stdin"])
            .stdin(b"not the passphrase\n".to_vec())
            .fails()
            .stderr;
        assert!(
            wrong.contains("wrong passphrase") && wrong.contains("nothing was unlocked"),
            "{wrong}"
        );
        assert!(!w.helper("alice-vm").status.success(), "still locked");

        let ok = w
            .keyward(&["unlock", "--passphrase-stdin", "--for", "1h"])
            .stdin(format!("{PASSPHRASE}\n").into_bytes())
            .ok()
            .stdout;
        assert!(ok.contains("unlocked key"), "{ok}");
        let id = w.aws("alice-vm", &["sts", "get-caller-identity"]);
        let arn = arn_of(&id);
        assert!(
            arn.as_str().unwrap().ends_with(":user/keyward/alice-vm"),
            "{arn}"
        );

        // Without a Secret Service, moving the key there fails and changes nothing.
        let e = w
            .keyward(&[
                "key",
                "migrate",
                "--to",
                "os-keychain",
                "--profile",
                "alice-vm",
            ])
            .fails()
            .stderr;
        assert!(
            e.contains("not reachable") && e.contains("nothing was changed"),
            "{e}"
        );
        assert!(key_files(&w).path("alice-vm").is_file());
    }
}

e2e! {
    fn a_key_moves_between_the_secret_service_and_a_file_without_being_shown(w) {
        let m = w.machine("laptop", None);
        let moved = w
            .keyward(&[
                "key",
                "migrate",
                "--to",
                "encrypted-file",
                "--profile",
                "laptop",
                "--passphrase-stdin",
            ])
            .stdin(format!("{PASSPHRASE}\n").into_bytes())
            .ok()
            .stdout;
        assert!(
            moved.contains("from the os-keychain store to the encrypted-file store"),
            "{moved}"
        );
        let look = w
            .cmd("secret-tool")
            .args(["lookup", "service", "keyward", "username", "laptop"])
            .output();
        assert!(
            look.stdout.is_empty(),
            "no copy is left in the Secret Service"
        );
        assert_eq!(
            key_files(&w).get("laptop").unwrap().unwrap().id,
            m.access_key_id
        );
        let id = w.aws("laptop", &["sts", "get-caller-identity"]);
        assert_eq!(arn_of(&id), Value::from(m.user_arn.clone()));

        let back = w
            .keyward(&[
                "key",
                "migrate",
                "--to",
                "os-keychain",
                "--profile",
                "laptop",
            ])
            .ok()
            .stdout;
        assert!(back.contains("to the os-keychain store"), "{back}");
        assert!(
            !key_files(&w).path("laptop").exists(),
            "the file is gone once the keychain holds the key"
        );
        let again = w
            .keyward(&[
                "key",
                "migrate",
                "--to",
                "os-keychain",
                "--profile",
                "laptop",
            ])
            .ok()
            .stdout;
        assert!(
            again.contains("already in the os-keychain store; nothing to do"),
            "{again}"
        );
        w.keyward(&["lock"]).ok();
        let id = w.aws("laptop", &["sts", "get-caller-identity"]);
        assert_eq!(arn_of(&id), Value::from(m.user_arn));
    }
}
