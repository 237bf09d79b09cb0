//! The interactive paths, on a real pseudo-terminal (util-linux `script`): MFA codes
//! typed at a /dev/tty prompt with echo off, and setup's QR code.

use std::io::{Read, Write};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use keyward_tests::e2e;
use keyward_tests::totp;
use keyward_tests::world::World;

/// A command on a pty; the test reads the screen and types.
struct Terminal {
    child: Child,
    screen: mpsc::Receiver<Vec<u8>>,
    seen: String,
}

impl Terminal {
    fn start(w: &World, command_line: &str, admin: bool) -> Terminal {
        let mut c = w.command("script");
        c.args(["-qfec", command_line, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if admin {
            World::as_admin(&mut c);
        }
        let mut child = c.spawn().expect("script");
        let mut out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Terminal {
            child,
            screen: rx,
            seen: String::new(),
        }
    }

    /// Reads the screen until `text` shows up; returns everything seen so far.
    fn wait_for(&mut self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.seen.contains(text) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.screen.recv_timeout(left) {
                Ok(bytes) => self.seen.push_str(&String::from_utf8_lossy(&bytes)),
                Err(mpsc::RecvTimeoutError::Timeout | mpsc::RecvTimeoutError::Disconnected) => {
                    panic!("`{text}` never appeared; the screen shows:\n{}", self.seen)
                }
            }
        }
        self.seen.clone()
    }

    fn type_line(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(format!("{line}\r").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    fn finish(mut self) -> (bool, String) {
        drop(self.child.stdin.take());
        let status = self.child.wait().unwrap();
        while let Ok(bytes) = self.screen.recv_timeout(Duration::from_millis(200)) {
            self.seen.push_str(&String::from_utf8_lossy(&bytes));
        }
        (status.success(), self.seen)
    }
}

/// What a person does: read the MFA secret off the screen into an authenticator.
fn seed_on_screen(screen: &str) -> Vec<u8> {
    let secret = screen
        .split("enter this secret by hand: ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .expect("the secret is shown for manual entry");
    totp::seed_from_base32(secret).expect("a base32 secret")
}

e2e! {
    fn login_reads_the_code_on_the_terminal_without_echo(w) needs("script") {
        let m = w.machine("typist", None);
        // No mfa_process: the terminal is the only way to get a code.
        w.keyward(&["profile", "add", "typist", "--mfa-serial", &m.mfa_serial])
            .ok();
        let mut t = Terminal::start(
            &w,
            &format!("{} login --profile typist", w.bin("keyward").display()),
            false,
        );
        let prompt = t.wait_for("MFA code for `typist`");
        assert!(
            prompt.contains(&m.mfa_serial),
            "the prompt names the device: {prompt}"
        );
        let code = w.next_code("typist");
        t.type_line(&code);
        let (ok, screen) = t.finish();
        assert!(ok, "{screen}");
        assert!(screen.contains("logged in: profile `typist`"), "{screen}");
        assert!(!screen.contains(&code), "the code was not echoed: {screen}");
        assert_eq!(w.proxy.control.count("GetSessionToken"), 1);
    }
}

e2e! {
    fn setup_draws_the_qr_code_and_reads_two_codes_on_the_terminal(w) needs("script") {
        let mut t = Terminal::start(
            &w,
            &format!(
                "{} setup --owner alice --machine desk --yes",
                w.bin("keyward").display()
            ),
            true,
        );
        let screen = t.wait_for("First MFA code from your authenticator");
        assert!(
            screen.contains("Scan this with your authenticator app"),
            "{screen}"
        );
        assert!(
            screen.contains('█') || screen.contains('▀') || screen.contains('▄'),
            "a QR code is drawn: {screen}"
        );
        let seed = seed_on_screen(&screen);
        let now = totp::now_step();
        // Steps t and t+1 stay valid for at least 30 s: no race with the step boundary.
        t.type_line(&totp::code(&seed, now));
        t.wait_for("enter the next one");
        t.type_line(&totp::code(&seed, now + 1));
        let (ok, screen) = t.finish();
        assert!(ok, "{screen}");
        assert!(
            screen.contains("virtual MFA device: enabled")
                && screen.contains("this computer is registered as alice-desk"),
            "{screen}"
        );
        let u = w.admin(&["user", "alice-desk"]);
        assert_eq!(u["mfa"].as_array().unwrap().len(), 1);
    }
}

e2e! {
    fn login_in_a_terminal_names_a_missing_key_before_asking_for_a_code(w) needs("script") {
        let m = w.machine("typist", None);
        w.keyward(&["profile", "add", "typist", "--mfa-serial", &m.mfa_serial])
            .ok();
        w.keyward(&["key", "remove", "--profile", "typist"]).ok();
        let t = Terminal::start(
            &w,
            &format!("{} login --profile typist", w.bin("keyward").display()),
            false,
        );
        let (ok, screen) = t.finish();
        assert!(!ok, "{screen}");
        assert!(
            !screen.contains("MFA code for"),
            "nobody is asked for a code: {screen}"
        );
        assert!(
            screen.contains("no access key for profile `typist`") && screen.contains("keyward setup"),
            "{screen}"
        );
        assert_eq!(w.proxy.control.count("GetSessionToken"), 0);
    }
}

e2e! {
    /// The README's real first run, typed at a terminal on a machine with no D-Bus: admin
    /// credentials from an AWS profile, a passphrase, the QR code and two codes, then the
    /// AWS CLI asks for one MFA code and answers as the new computer.
    fn the_readme_first_run_works_on_a_headless_machine(w: headless) needs("script") {
        w.admin(&["make-world", "data-bucket", "developers"]);
        // `--admin-profile root`: the account's admin credentials in an AWS profile.
        let creds = w.home.join(".aws/credentials");
        std::fs::create_dir_all(creds.parent().unwrap()).unwrap();
        std::fs::write(
            &creds,
            format!(
                "[root]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
                keyward_sandbox::aws::ROOT_KEY_ID,
                keyward_sandbox::aws::ROOT_SECRET
            ),
        )
        .unwrap();
        let keyward = w.bin("keyward").display().to_string();
        let mut t = Terminal::start(
            &w,
            &format!("{keyward} setup --owner alice --machine vm --admin --admin-profile root --group developers"),
            false,
        );
        t.wait_for("New passphrase");
        t.type_line("correct horse battery staple");
        t.wait_for("The same passphrase again");
        t.type_line("correct horse battery staple");
        t.wait_for("apply these changes?");
        t.type_line("y");
        let screen = t.wait_for("First MFA code from your authenticator");
        let seed = seed_on_screen(&screen);
        let now = totp::now_step();
        t.type_line(&totp::code(&seed, now));
        t.wait_for("enter the next one");
        t.type_line(&totp::code(&seed, now + 1));
        let (ok, screen) = t.finish();
        assert!(ok, "{screen}");
        assert!(
            screen.contains("key store: encrypted-file, because no OS keychain is reachable"),
            "{screen}"
        );

        // The AWS CLI through the profile setup wrote: one code, typed at its prompt.
        while totp::now_step() < now + 1 {
            std::thread::sleep(Duration::from_millis(200));
        }
        let aws = format!(
            "aws sts get-caller-identity --profile alice-vm --endpoint-url {} --output json",
            w.proxy.url()
        );
        let mut t = Terminal::start(&w, &aws, false);
        t.wait_for("MFA code for `alice-vm`");
        t.type_line(&totp::code(&seed, now + 2));
        let (ok, screen) = t.finish();
        assert!(ok, "{screen}");
        assert!(screen.contains(":user/keyward/alice-vm"), "{screen}");
    }
}
