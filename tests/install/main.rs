//! install/install.sh end to end: install into a prefix, `keyward doctor --json`, the
//! unit and plist checked by their own tools, idempotence, and an uninstall that
//! removes every file it installed (and no keychain entry).

use std::path::{Path, PathBuf};
use std::process::Command;

use keyward_tests::cmd::Cmd;
use keyward_tests::e2e;
use keyward_tests::world::{which, World};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files(&p));
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// install.sh with the world's HOME, but the real toolchain and build directory.
fn install_sh<'w>(w: &'w World, args: &[&str]) -> Cmd<'w> {
    let real_home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let mut c = w.cmd("bash");
    c.arg(repo().join("install/install.sh")).args(args);
    c.env(
        "CARGO_HOME",
        std::env::var("CARGO_HOME").unwrap_or_else(|_| format!("{real_home}/.cargo")),
    )
    .env(
        "RUSTUP_HOME",
        std::env::var("RUSTUP_HOME").unwrap_or_else(|_| format!("{real_home}/.rustup")),
    )
    .env(
        "CARGO_TARGET_DIR",
        std::env::var("CARGO_TARGET_DIR")
            .unwrap_or_else(|_| repo().join("target").display().to_string()),
    );
    c
}

e2e! {
    fn install_doctor_and_uninstall(w) needs("systemd-analyze", "xmllint", "cargo") {
        let prefix = w.outside.join("prefix");
        let p = prefix.display().to_string();
        install_sh(&w, &["--prefix", &p, "--debug"]).ok();
        let installed = files(&prefix);
        let unit = w.home.join(".config/systemd/user/keywardd.service");
        assert!(unit.is_file(), "the systemd user unit is installed");
        for bin in ["keyward", "keywardd", "keyward-credential-process"] {
            assert!(prefix.join("bin").join(bin).is_file(), "{bin}");
        }
        assert!(prefix.join("share/man/man1/keyward-revoke.1").is_file());
        assert!(prefix.join("share/man/man1/keywardd.1").is_file());
        assert!(prefix
            .join("share/bash-completion/completions/keyward")
            .is_file());
        let manifest = std::fs::read_to_string(prefix.join("share/keyward/install-manifest")).unwrap();
        for f in &installed {
            assert!(
                manifest.lines().any(|l| Path::new(l) == f),
                "{} is not in the manifest",
                f.display()
            );
        }

        // The unit and the plist, checked by their own tools.
        let verify = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&unit)
            .output()
            .unwrap();
        assert!(
            verify.status.success(),
            "systemd-analyze verify: {}",
            String::from_utf8_lossy(&verify.stderr)
        );
        let unit_text = std::fs::read_to_string(&unit).unwrap();
        assert!(
            unit_text.contains(&format!("ExecStart={p}/bin/keywardd")),
            "{unit_text}"
        );
        for opt in [
            "NoNewPrivileges=yes",
            "PrivateTmp=yes",
            "ProtectSystem=strict",
            "LockPersonality=yes",
            "MemoryDenyWriteExecute=yes",
            "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        ] {
            assert!(unit_text.contains(opt), "{opt}");
        }
        let plist = Command::new("xmllint")
            .arg("--noout")
            .arg(repo().join("install/dev.keyward.keywardd.plist"))
            .output()
            .unwrap();
        assert!(
            plist.status.success(),
            "xmllint: {}",
            String::from_utf8_lossy(&plist.stderr)
        );

        // keyward doctor, from the installed binary.
        let doctor = |w: &World| {
            let mut c = w.command(prefix.join("bin/keyward"));
            c.args(["doctor", "--json"]);
            w.output(c)
        };
        let out = doctor(&w);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
        let names: Vec<&str> = v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "keychain",
                "key-store",
                "daemon",
                "socket",
                "aws-config",
                "plaintext-keys",
                "clock",
                "service"
            ]
        );
        let status = |n: &str| {
            v["checks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["name"] == n)
                .unwrap()["status"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        for n in [
            "keychain",
            "daemon",
            "socket",
            "plaintext-keys",
            "clock",
            "service",
        ] {
            assert_eq!(status(n), "ok", "{n}: {v}");
        }
        assert_eq!(status("aws-config"), "warn", "no profile yet: {v}");
        assert_eq!(v["ok"], true);
        assert!(out.status.success());

        // A plaintext key is a failure with the exact fix.
        std::fs::create_dir_all(w.home.join(".aws")).unwrap();
        std::fs::write(
            w.home.join(".aws/credentials"),
            "[old]\naws_access_key_id = AKIAOLD0000000000001\naws_secret_access_key = plaintext\n",
        )
        .unwrap();
        let out = doctor(&w);
        assert_eq!(out.status.code(), Some(1));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let c = v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "plaintext-keys")
            .unwrap()
            .clone();
        assert_eq!(c["status"], "fail");
        assert_eq!(
            c["fix"],
            "keyward key import --profile old --from-credentials-profile old --scrub"
        );
        w.cmd(prefix.join("bin/keyward"))
            .args([
                "key",
                "import",
                "--profile",
                "old",
                "--from-credentials-profile",
                "old",
                "--scrub",
            ])
            .ok();

        // Idempotent.
        install_sh(&w, &["--prefix", &p, "--debug"]).ok();
        assert_eq!(files(&prefix), installed);

        // Uninstall removes every file it installed, and no keychain entry.
        install_sh(&w, &["--uninstall", "--prefix", &p]).ok();
        assert_eq!(
            files(&prefix),
            Vec::<PathBuf>::new(),
            "nothing left under the prefix"
        );
        assert!(!unit.exists(), "unit removed");
        let rundir = w.run.join("keyward");
        assert!(
            !rundir.exists(),
            "no socket, lock or log left: {:?}",
            std::fs::read_dir(&rundir).map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
        );
        if which("secret-tool").is_some() {
            let mut look = w.command("secret-tool");
            look.args(["lookup", "service", "keyward", "username", "old"]);
            assert!(
                !look.output().unwrap().stdout.is_empty(),
                "the keychain entry is kept"
            );
        }
        assert!(w.client().status().is_err(), "the daemon was stopped");
    }
}
