//! The crate rules of ARCHITECTURE.md, checked against `cargo metadata`: what each
//! workspace crate may depend on. A rule broken here is a design change to discuss,
//! not a line to edit.

/// (crate, the workspace crates it may use, the only outside crates it may use, if
/// limited).
type Rule = (
    &'static str,
    &'static [&'static str],
    Option<&'static [&'static str]>,
);

const RULES: &[Rule] = &[
    // The credential_process fast path: no tokio, no AWS SDK, no clap.
    (
        "keyward-proto",
        &[],
        Some(&["serde", "serde_json", "rustix", "zeroize", "toml"]),
    ),
    ("keyward-policy", &[], None),
    ("keyward-daemon", &["keyward-proto"], None),
    // What ships: never the emulated AWS or the test harness.
    (
        "keyward",
        &["keyward-proto", "keyward-daemon", "keyward-policy"],
        None,
    ),
    (
        "keyward-sandbox",
        &["keyward-proto", "keyward-policy"],
        None,
    ),
    (
        "keyward-tests",
        &["keyward-proto", "keyward-daemon", "keyward-sandbox"],
        None,
    ),
    ("keyward-bench", &["keyward-proto", "keyward-tests"], None),
];

#[test]
fn every_crate_depends_only_on_what_architecture_md_allows() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let packages = meta["packages"].as_array().expect("packages");
    let mut problems = Vec::new();
    for p in packages {
        let name = p["name"].as_str().unwrap_or_default();
        let Some((_, internal, outside)) = RULES.iter().find(|(n, _, _)| *n == name) else {
            problems.push(format!(
                "{name} has no rule in crate_rules.rs (and ARCHITECTURE.md)"
            ));
            continue;
        };
        let normal = p["dependencies"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|d| d["kind"].is_null());
        for d in normal {
            let dep = d["name"].as_str().unwrap_or_default();
            let is_ours = dep.starts_with("keyward");
            let allowed = if is_ours {
                internal.contains(&dep)
            } else {
                outside.is_none_or(|o| o.contains(&dep))
            };
            if !allowed {
                problems.push(format!("{name} depends on {dep}"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "crate rules broken:\n{}",
        problems.join("\n")
    );
}
