//! Line-preserving edits of `~/.aws/config` and `~/.aws/credentials`: keyward touches
//! only its own lines and keeps every other line and comment as it was.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use zeroize::Zeroizing;

/// `AWS_CONFIG_FILE`, else `~/.aws/config`.
pub fn config_path() -> Result<PathBuf> {
    env_or_home("AWS_CONFIG_FILE", "config")
}

/// `AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`.
pub fn credentials_path() -> Result<PathBuf> {
    env_or_home("AWS_SHARED_CREDENTIALS_FILE", "credentials")
}

fn env_or_home(var: &str, name: &str) -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(var).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    Ok(PathBuf::from(home).join(".aws").join(name))
}

/// The section header name in the config file (`default` has no `profile ` prefix).
pub fn config_section(profile: &str) -> String {
    if profile == "default" {
        "default".to_owned()
    } else {
        format!("profile {profile}")
    }
}

fn header_name(line: &str) -> Option<&str> {
    let t = line.trim();
    let inner = t.strip_prefix('[')?.strip_suffix(']')?;
    Some(inner.trim())
}

fn key_of(line: &str) -> Option<&str> {
    let t = line.trim_start();
    if t.starts_with('#') || t.starts_with(';') {
        return None;
    }
    t.split_once('=').map(|(k, _)| k.trim())
}

/// Line range `[start, end)` of a section, header included.
fn section_range(lines: &[&str], section: &str) -> Option<(usize, usize)> {
    let start = lines.iter().position(|l| header_name(l) == Some(section))?;
    let end = lines[start + 1..]
        .iter()
        .position(|l| header_name(l).is_some())
        .map_or(lines.len(), |i| start + 1 + i);
    Some((start, end))
}

fn join(lines: &[String]) -> String {
    let mut out = lines.join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

/// Sets `key = value` in `section`, creating the section at the end if needed.
pub fn set_key(text: &str, section: &str, key: &str, value: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    let line = format!("{key} = {value}");
    match section_range(&lines, section) {
        Some((start, end)) => {
            if let Some(i) = (start + 1..end).find(|&i| key_of(lines[i]) == Some(key)) {
                out[i] = line;
            } else {
                // After the section's last non-blank line.
                let mut at = end;
                while at > start + 1 && lines[at - 1].trim().is_empty() {
                    at -= 1;
                }
                out.insert(at, line);
            }
        }
        None => {
            if out.last().is_some_and(|l| !l.trim().is_empty()) {
                out.push(String::new());
            }
            out.push(format!("[{section}]"));
            out.push(line);
        }
    }
    join(&out)
}

/// Removes `key` from `section`; drops the section when nothing but blanks is left.
pub fn remove_key(text: &str, section: &str, key: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let Some((start, end)) = section_range(&lines, section) else {
        return text.to_owned();
    };
    let kept: Vec<usize> = (start + 1..end)
        .filter(|&i| key_of(lines[i]) != Some(key))
        .collect();
    let empty = kept.iter().all(|&i| lines[i].trim().is_empty());
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let in_section = i >= start && i < end;
        if !in_section || (!empty && (i == start || kept.contains(&i))) {
            out.push((*l).to_owned());
        }
    }
    join(&out)
}

pub fn get_key<'a>(text: &'a str, section: &str, key: &str) -> Option<&'a str> {
    let lines: Vec<&str> = text.lines().collect();
    let (start, end) = section_range(&lines, section)?;
    lines[start + 1..end]
        .iter()
        .find(|l| key_of(l) == Some(key))
        .and_then(|l| l.split_once('='))
        .map(|(_, v)| v.trim())
}

/// Every `key = value` of a file with the section it is in (`[profile x]` read as
/// `x`), for the keys named: what doctor and audit look for.
pub fn entries<'a>(text: &'a str, keys: &[&str]) -> Vec<(String, &'a str, &'a str)> {
    let mut section = String::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            name.trim()
                .trim_start_matches("profile ")
                .clone_into(&mut section);
        } else if let Some((k, v)) = t.split_once('=') {
            if keys.contains(&k.trim()) {
                out.push((section.clone(), k.trim(), v.trim()));
            }
        }
    }
    out
}

/// Removes a whole section (header to the next header).
/// The keys a section sets, in order.
pub fn section_keys(text: &str, section: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let Some((start, end)) = section_range(&lines, section) else {
        return Vec::new();
    };
    lines[start + 1..end]
        .iter()
        .filter_map(|l| key_of(l).map(str::to_owned))
        .collect()
}

pub fn remove_section(text: &str, section: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let Some((start, end)) = section_range(&lines, section) else {
        return text.to_owned();
    };
    let out: Vec<String> = lines[..start]
        .iter()
        .chain(&lines[end..])
        .map(|l| (*l).to_owned())
        .collect();
    join(&out)
}

#[cfg(test)]
pub fn has_section(text: &str, section: &str) -> bool {
    text.lines().any(|l| header_name(l) == Some(section))
}

pub fn read_or_empty(path: &Path) -> Result<Zeroizing<String>> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Zeroizing::new(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Zeroizing::new(String::new())),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "# my settings\n[default]\nregion = eu-west-1\n\n[profile other]\n# keep me\noutput = json\n";

    #[test]
    fn set_key_appends_a_new_section_and_keeps_the_rest() {
        let out = set_key(
            CONFIG,
            "profile dev",
            "credential_process",
            "/bin/k --profile dev",
        );
        assert!(out.starts_with(CONFIG), "{out}");
        assert!(
            out.ends_with("\n[profile dev]\ncredential_process = /bin/k --profile dev\n"),
            "{out}"
        );
    }

    #[test]
    fn set_key_replaces_in_place() {
        let once = set_key(CONFIG, "profile other", "output", "text");
        assert_eq!(once, CONFIG.replace("output = json", "output = text"));
        let added = set_key(CONFIG, "default", "credential_process", "x");
        assert!(
            added.contains("region = eu-west-1\ncredential_process = x\n\n[profile other]"),
            "{added}"
        );
        assert_eq!(set_key(&added, "default", "credential_process", "x"), added);
    }

    #[test]
    fn remove_key_drops_an_emptied_section_only() {
        let with = set_key(CONFIG, "profile dev", "credential_process", "x");
        assert_eq!(
            remove_key(&with, "profile dev", "credential_process").trim_end(),
            CONFIG.trim_end()
        );
        let out = remove_key(CONFIG, "profile other", "output");
        assert!(out.contains("[profile other]\n# keep me\n"), "{out}");
        assert_eq!(remove_key(CONFIG, "profile none", "x"), CONFIG);
    }

    #[test]
    fn credentials_section_is_read_and_scrubbed() {
        let creds = "[a]\naws_access_key_id = AKIAA\naws_secret_access_key = sa\n# note\n[b]\naws_access_key_id=AKIAB\naws_secret_access_key=sb\n";
        assert_eq!(get_key(creds, "b", "aws_secret_access_key"), Some("sb"));
        assert_eq!(get_key(creds, "a", "aws_access_key_id"), Some("AKIAA"));
        let out = remove_section(creds, "a");
        assert_eq!(
            out,
            "[b]\naws_access_key_id=AKIAB\naws_secret_access_key=sb\n"
        );
        assert!(!has_section(&out, "a"));
    }
}
