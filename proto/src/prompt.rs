//! Asking for an MFA code without a terminal (an IDE, a GUI app): the configured
//! `prompt = [...]` program, else zenity or kdialog when a display is there, else
//! osascript on macOS. None found: the helper fails at once with "run `keyward login`".

use std::path::Path;

/// The argv of a window that asks for `profile`'s code, if one can be shown.
pub fn program(configured: Option<Vec<String>>, profile: &str) -> Option<Vec<String>> {
    if configured.is_some() {
        return configured;
    }
    let text = format!("MFA code for the AWS profile `{profile}`");
    if cfg!(target_os = "macos") && on_path("osascript") {
        return Some(vec![
            "osascript".into(),
            "-e".into(),
            format!("display dialog \"{text}\" default answer \"\" with title \"keyward\" with hidden answer"),
            "-e".into(),
            "text returned of result".into(),
        ]);
    }
    let display = ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|d| !d.is_empty()));
    if !display {
        return None;
    }
    if on_path("zenity") {
        return Some(vec![
            "zenity".into(),
            "--entry".into(),
            "--hide-text".into(),
            "--title=keyward".into(),
            format!("--text={text}"),
        ]);
    }
    if on_path("kdialog") {
        return Some(vec![
            "kdialog".into(),
            "--title".into(),
            "keyward".into(),
            "--password".into(),
            text,
        ]);
    }
    None
}

fn on_path(prog: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|d| {
            let p = Path::new(&d).join(prog);
            std::fs::metadata(&p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configured_prompt_wins_and_nothing_shows_without_a_display() {
        let mine = vec!["my-prompt".to_owned()];
        assert_eq!(program(Some(mine.clone()), "p"), Some(mine));
        if !cfg!(target_os = "macos")
            && std::env::var_os("DISPLAY").is_none()
            && std::env::var_os("WAYLAND_DISPLAY").is_none()
        {
            assert_eq!(program(None, "p"), None);
        }
    }
}
