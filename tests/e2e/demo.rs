//! `keyward demo`: runs to the end on its own throw-away world, and leaves no process
//! and no file behind, even when interrupted.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use keyward_tests::world::{bin_dir, skip, which};

/// The venv that holds moto and the AWS CLI (tests/run.sh puts it first on PATH).
fn venv(test: &str) -> Option<PathBuf> {
    let dir = which("moto_server")?.parent()?.parent()?.to_path_buf();
    if dir.join("bin/aws").is_file() && dir.join("bin/moto_server").is_file() {
        Some(dir)
    } else {
        skip(
            test,
            "no venv with moto_server and aws on PATH (tests/run.sh makes one)",
        );
        None
    }
}

fn demo_command(home: &Path, venv: &Path) -> Command {
    let mut c = Command::new(bin_dir().join("keyward"));
    c.arg("demo")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("KEYWARD_PYTHON_ENV", venv)
        .env("LANG", "C.UTF-8")
        .stdin(Stdio::null());
    c
}

fn processes_naming(root: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|p| {
            p.file_name()
                .to_str()
                .is_some_and(|n| n.parse::<u32>().is_ok())
        })
        .filter(|p| {
            let hit = |f: &str| {
                let b = std::fs::read(p.path().join(f)).unwrap_or_default();
                b.windows(root.len()).any(|w| w == root.as_bytes())
            };
            hit("environ") || hit("cmdline")
        })
        .map(|p| {
            String::from_utf8_lossy(&std::fs::read(p.path().join("cmdline")).unwrap_or_default())
                .replace('\0', " ")
        })
        .collect()
}

fn workspace_of(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("workspace: "))
        .expect("the demo names its workspace")
        .trim()
        .to_owned()
}

fn wait_gone(root: &str) -> Vec<String> {
    for _ in 0..100 {
        let left = processes_naming(root);
        if left.is_empty() {
            return left;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    processes_naming(root)
}

#[test]
fn the_demo_runs_to_the_end_and_leaves_nothing_behind() {
    let test = "the_demo_runs_to_the_end_and_leaves_nothing_behind";
    let Some(venv) = venv(test) else { return };
    if which("gnome-keyring-daemon").is_none() {
        skip(test, "gnome-keyring-daemon not on PATH");
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let out = demo_command(home.path(), &venv).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for n in 1..=7 {
        assert!(stdout.contains(&format!("[{n}/7]")), "step {n}: {stdout}");
    }
    assert!(
        stdout.contains(":user/keyward/alice-laptop"),
        "the AWS CLI saw alice-laptop: {stdout}"
    );
    assert!(
        stdout.contains("this computer's key was revoked or deleted"),
        "{stdout}"
    );
    assert!(stdout.contains("REVOKED"), "{stdout}");
    let root = workspace_of(&stdout);
    assert!(stdout.contains(&format!("{root} removed")), "{stdout}");
    assert!(!Path::new(&root).exists(), "the workspace is gone");
    assert_eq!(
        wait_gone(&root),
        Vec::<String>::new(),
        "no demo process is left"
    );
    // The user's own HOME was never touched.
    let left: Vec<_> = std::fs::read_dir(home.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "nothing in HOME: {left:?}");
}

#[test]
fn an_interrupted_demo_cleans_up_too() {
    let test = "an_interrupted_demo_cleans_up_too";
    let Some(venv) = venv(test) else { return };
    let home = tempfile::tempdir().unwrap();
    let mut child = demo_command(home.path(), &venv)
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let errs = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut root = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(r) = line.strip_prefix("workspace: ") {
            root = r.trim().to_owned();
        }
        if line.starts_with("[3/7]") {
            break;
        }
    }
    assert!(!root.is_empty());
    assert!(!processes_naming(&root).is_empty(), "the demo is running");
    // Ctrl-C as a terminal sends it: to the whole foreground process group.
    rustix::process::kill_process_group(
        rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
        rustix::process::Signal::INT,
    )
    .unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    let errs = errs.join().unwrap();
    assert_eq!(status.code(), Some(130), "{rest:?}\n{errs}");
    assert!(!errs.contains("Traceback"), "no Python traceback: {errs}");
    assert!(rest.iter().any(|l| l.contains("cleaned up")), "{rest:?}");
    assert!(!Path::new(&root).exists(), "the workspace is gone");
    assert_eq!(
        wait_gone(&root),
        Vec::<String>::new(),
        "no demo process is left"
    );
}
