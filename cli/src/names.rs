//! Names keyward accepts: owners, machines, and the IAM user `<owner>-<machine>`.

use anyhow::{bail, Result};

/// IAM user names: `[A-Za-z0-9+=,.@_-]`, 1 to 64 characters.
pub fn check_iam_name(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
    if !ok {
        bail!("`{name}` is not a valid {what}: use 1-64 letters, digits or + = , . @ _ -");
    }
    Ok(())
}

/// Owners are lower-case letters and digits: the owner is the part of `alice-laptop`
/// before the first `-`, and it names a statement in keyward's role guard.
pub fn check_owner(owner: &str) -> Result<()> {
    let ok = !owner.is_empty()
        && owner.len() <= 32
        && owner
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !ok {
        let hint: String = owner
            .to_ascii_lowercase()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        bail!(
            "`{owner}` is not a valid owner: use 1-32 lower-case letters or digits, e.g. `{hint}`"
        );
    }
    Ok(())
}

/// The machine user of `owner`'s computer `machine`, checked.
pub fn machine_user(owner: &str, machine: &str) -> Result<String> {
    check_owner(owner)?;
    check_iam_name("machine name", machine)?;
    let user = format!("{owner}-{machine}");
    check_iam_name(
        "user name (<owner>-<machine>, at most 64 characters)",
        &user,
    )?;
    Ok(user)
}

/// The user name for `machine` of `owner`: `laptop` and `alice-laptop` both work.
pub fn resolve_machine(owner: Option<&str>, machine: &str) -> String {
    match owner {
        Some(o) if !machine.starts_with(&format!("{o}-")) => format!("{o}-{machine}"),
        _ => machine.to_owned(),
    }
}

/// The hostname, lower-cased, with anything IAM does not allow turned into `-`.
pub fn default_machine() -> String {
    let host = hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let short = host.split('.').next().unwrap_or("computer").to_lowercase();
    let mut out = String::new();
    for c in short.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '-'
        };
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    let out = out.trim_matches('-').to_owned();
    if out.is_empty() {
        "computer".to_owned()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iam_names_are_checked() {
        assert!(check_iam_name("x", "alice-laptop_2.0@home").is_ok());
        assert!(check_iam_name("x", "").is_err());
        assert!(check_iam_name("x", &"a".repeat(65)).is_err());
        assert!(check_iam_name("x", "alice laptop").is_err());
        assert!(check_iam_name("x", "alice/laptop").is_err());
    }

    #[test]
    fn owners_are_lower_case_alphanumerics() {
        assert!(check_owner("alice2").is_ok());
        for bad in ["", "Alice", "al-ice", "al_ice", "al ice", &"a".repeat(33)] {
            assert!(check_owner(bad).is_err(), "{bad}");
        }
        assert!(check_owner("Al-ice")
            .unwrap_err()
            .to_string()
            .contains("`alice`"));
    }

    #[test]
    fn machines_resolve_with_or_without_the_owner() {
        assert_eq!(resolve_machine(Some("alice"), "laptop"), "alice-laptop");
        assert_eq!(
            resolve_machine(Some("alice"), "alice-laptop"),
            "alice-laptop"
        );
        assert_eq!(resolve_machine(None, "bob-desk"), "bob-desk");
    }

    #[test]
    fn default_machine_is_iam_safe() {
        let m = default_machine();
        assert!(check_iam_name("machine", &m).is_ok(), "{m}");
        assert_eq!(m, m.to_lowercase());
    }
}
