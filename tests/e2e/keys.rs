//! Key storage and profiles: the real Secret Service, and the AWS files kept intact.

use keyward_tests::e2e;
use keyward_tests::world::World;

e2e! {
    fn import_from_env_lands_in_the_secret_service_and_remove_deletes_it(w) needs("secret-tool") {
        let secret = "EnvImportedSecretKey/0123456789abcdefCANARY";
        w.canary(secret);
        let out = w
            .keyward(&["key", "import", "--profile", "envkey"])
            .env("AWS_ACCESS_KEY_ID", "AKIAENVIMPORT0000001")
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .output();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(said.contains("…0001") && !said.contains(secret), "{said}");

        // Ask the Secret Service directly, not through keyward: the key is really there.
        let mut look = w.command("secret-tool");
        look.args(["lookup", "service", "keyward", "username", "envkey"]);
        let got = look.output().unwrap();
        let stored = String::from_utf8_lossy(&got.stdout);
        assert!(
            stored.contains("AKIAENVIMPORT0000001"),
            "secret-tool found: {stored:?}"
        );

        w.keyward(&["key", "remove", "--profile", "envkey"]).ok();
        let mut look = w.command("secret-tool");
        look.args(["lookup", "service", "keyward", "username", "envkey"]);
        assert!(
            look.output().unwrap().stdout.is_empty(),
            "removed from the Secret Service"
        );
        let again = w.keyward(&["key", "remove", "--profile", "envkey"]).ok().stdout;
        assert!(again.contains("nothing to do"), "{again}");
    }
}

/// `keyward key import --scrub` from `section` of the credentials file at `creds`.
fn scrub_import(w: &World, creds: &std::path::Path, section: &str) -> std::process::Output {
    w.keyward(&[
        "key",
        "import",
        "--profile",
        "laptop",
        "--from-credentials-profile",
        section,
        "--scrub",
    ])
    .env("AWS_SHARED_CREDENTIALS_FILE", creds)
    .output()
}

e2e! {
    fn scrub_removes_only_the_imported_section(w) {
        let creds = w.outside.join("credentials");
        let before = "# my keys\n[old]\naws_access_key_id = AKIAOLDKEY0000000001\naws_secret_access_key = OldSecretCANARY\n\n[keep]\n# keep this comment\naws_access_key_id = AKIAKEEP000000000001\naws_secret_access_key = keepme\n";
        std::fs::write(&creds, before).unwrap();
        let out = scrub_import(&w, &creds, "old");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let after = std::fs::read_to_string(&creds).unwrap();
        assert_eq!(after, "# my keys\n[keep]\n# keep this comment\naws_access_key_id = AKIAKEEP000000000001\naws_secret_access_key = keepme\n");

        // A missing section changes nothing and says so.
        let out = scrub_import(&w, &creds, "absent");
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("no aws_access_key_id"));
        assert_eq!(std::fs::read_to_string(&creds).unwrap(), after);
    }
}

e2e! {
    fn bad_keys_and_names_are_refused_and_change_nothing(w) {
        let out = w
            .keyward(&["key", "import", "--profile", "x"])
            .env("AWS_ACCESS_KEY_ID", "short")
            .env("AWS_SECRET_ACCESS_KEY", "s")
            .output();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("does not look like an AWS access key"));
        let out = w.keyward(&["key", "import", "--profile", "../evil"]).output();
        assert!(!out.status.success());
        let out = w.keyward(&["profile", "add", "p", "--mfa-serial", "not-an-arn"]).output();
        assert!(!out.status.success());
        let out = w.keyward(&[
            "profile",
            "add",
            "r",
            "--role-arn",
            "arn:aws:iam::1:role/x",
            "--source",
            "missing",
        ])
        .output();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("source profile `missing` is missing"));
        assert!(
            !w.home.join(".config/keyward/config.toml").exists(),
            "no config written"
        );
        assert!(
            !w.home.join(".aws/config").exists(),
            "no AWS config written"
        );
    }
}

e2e! {
    fn profile_add_and_remove_keep_every_other_line(w) {
        let aws = w.home.join(".aws/config");
        std::fs::create_dir_all(aws.parent().unwrap()).unwrap();
        let before = "# hand-written\n[default]\nregion = eu-west-1\n\n[profile other]\noutput = table ; inline\n";
        std::fs::write(&aws, before).unwrap();
        w.keyward(&[
            "profile",
            "add",
            "dev",
            "--mfa-serial",
            "arn:aws:iam::123456789012:mfa/dev",
            "--session-duration",
            "8h",
        ])
        .ok();
        w.keyward(&[
            "profile",
            "add",
            "admin",
            "--role-arn",
            "arn:aws:iam::123456789012:role/admin",
            "--source",
            "dev",
            "--external-id",
            "x-1",
        ])
        .ok();
        let text = std::fs::read_to_string(&aws).unwrap();
        assert!(text.starts_with(before), "{text}");
        assert!(
            text.contains("[profile dev]\ncredential_process = "),
            "{text}"
        );
        assert!(
            text.contains("[profile admin]\ncredential_process = "),
            "{text}"
        );

        let list = w.keyward(&["profile", "list"]).ok().stdout;
        assert!(
            list.contains("dev") && list.contains("8h") && list.contains("via dev"),
            "{list}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&w.keyward(&["profile", "list", "--json"]).ok().stdout).unwrap();
        assert_eq!(json["admin"]["external_id"], "x-1");

        let out = w.keyward(&["profile", "remove", "dev"]).output();
        assert!(!out.status.success(), "dev is still the source of admin");
        w.keyward(&["profile", "remove", "admin"]).ok();
        w.keyward(&["profile", "remove", "dev"]).ok();
        let text = std::fs::read_to_string(&aws).unwrap();
        assert_eq!(text.trim_end(), before.trim_end());
    }
}
