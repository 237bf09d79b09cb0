//! Process hardening at start: no core dumps, not dumpable (so same-uid processes
//! cannot ptrace us or read /proc/<pid>/mem), and the open-file limit raised to its
//! hard limit. rustix keeps this free of `unsafe`.

/// Applies what the platform supports and reports what it could not.
pub fn harden() -> Vec<String> {
    let mut problems = Vec::new();
    let zero = rustix::process::Rlimit {
        current: Some(0),
        maximum: Some(0),
    };
    if let Err(e) = rustix::process::setrlimit(rustix::process::Resource::Core, zero) {
        problems.push(format!("RLIMIT_CORE=0: {e}"));
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Err(e) =
        rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
    {
        problems.push(format!("PR_SET_DUMPABLE=0: {e}"));
    }
    if let Err(e) = raise_open_files() {
        problems.push(format!("RLIMIT_NOFILE: {e}"));
    }
    problems
}

/// Raises the soft open-file limit to the hard one: a flood of connections should meet
/// the daemon's own cap, not the default 1024.
fn raise_open_files() -> rustix::io::Result<()> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let lim = getrlimit(Resource::Nofile);
    if lim.current == lim.maximum {
        return Ok(());
    }
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: lim.maximum,
            maximum: lim.maximum,
        },
    )
}

/// Reads the hardening back, for `status`.
pub fn report() -> keyward_proto::Hardening {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let dumpable = !matches!(
        rustix::process::dumpable_behavior(),
        Ok(rustix::process::DumpableBehavior::NotDumpable)
    );
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let dumpable = false;
    keyward_proto::Hardening {
        dumpable,
        core_limit: rustix::process::getrlimit(rustix::process::Resource::Core).current,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn core_limit_is_zero_after_harden() {
        // Runs in the test process: harmless, and proves the calls work here.
        assert!(super::harden().is_empty());
        let lim = rustix::process::getrlimit(rustix::process::Resource::Core);
        assert_eq!(lim.current, Some(0));
        let r = super::report();
        assert!(!r.dumpable, "PR_SET_DUMPABLE 0 read back");
        assert_eq!(r.core_limit, Some(0));
    }
}
