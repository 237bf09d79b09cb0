//! Without a terminal (an IDE, a GUI app) the helper asks for the MFA code in a
//! window: a fake zenity stands in for the person; with nothing to show, it fails fast.

use keyward_tests::e2e;

e2e! {
    fn without_a_terminal_a_prompt_window_asks_for_the_code(w) {
        let m = w.machine("gui", None);
        w.keyward(&[
            "profile",
            "add",
            "gui",
            "--mfa-serial",
            &m.mfa_serial,
            "--region",
            "us-east-1",
        ])
        .ok();
        // A fake zenity that "types" the current code, and records how it was asked.
        let asked = w.root().join("asked.txt");
        let zenity = w.fake_program(
            "zenity",
            &format!(
                "printf '%s\\n' \"$*\" >> {}\nexec {}",
                asked.display(),
                w.totp_command("gui")
            ),
        );
        let aws_cli = |display: Option<&str>, extra_path: bool| {
            // setsid: no controlling terminal, like an IDE running the AWS CLI.
            let mut c = w.command("setsid");
            if extra_path {
                c.env("PATH", w.path_with_fakes());
            }
            if let Some(d) = display {
                c.env("DISPLAY", d);
            }
            c.args([
                "aws",
                "--profile",
                "gui",
                "--endpoint-url",
                &w.proxy.url(),
                "sts",
                "get-caller-identity",
            ]);
            let started = std::time::Instant::now();
            (w.output(c), started.elapsed())
        };
        let (out, _) = aws_cli(Some(":99"), true);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let how = std::fs::read_to_string(&asked).unwrap();
        assert!(how.contains("--entry") && how.contains("gui"), "{how}");

        // Nothing can be shown (no display): it fails within 5 s, naming the way out.
        w.keyward(&["lock"]).ok();
        let (out, took) = aws_cli(None, true);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("keyward login --profile gui"),
            "{err}"
        );
        assert!(took < std::time::Duration::from_secs(5), "took {took:?}");

        // A configured `prompt = [...]` needs no display.
        let cfg = w.home.join(".config/keyward/config.toml");
        let text = std::fs::read_to_string(&cfg).unwrap();
        std::fs::write(&cfg, format!("prompt = [\"{}\"]\n{text}", zenity.display())).unwrap();
        let (out, _) = aws_cli(None, false);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
