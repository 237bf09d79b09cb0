//! Process hardening at start: no core dumps, not dumpable (so same-uid processes
//! cannot ptrace us or read /proc/<pid>/mem), and the open-file limit raised to its
//! hard limit; rustix keeps that free of `unsafe`. And the one `unsafe` of the project:
//! [`ZeroingAllocator`], which wipes every heap block before it is freed, so that
//! copies of secrets in buffers we do not own (hyper's, the SDK's, serde's) do not
//! outlive them.

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

/// The system allocator, except that a block is zeroed before it is freed (or moved
/// away from by `realloc`). keywardd and keyward install it as `#[global_allocator]`.
pub struct ZeroingAllocator;

#[allow(unsafe_code)]
mod zeroing {
    use std::alloc::{GlobalAlloc, Layout, System};

    use zeroize::Zeroize;

    /// Wipes `size` bytes at `ptr` with writes the compiler may not drop.
    ///
    /// # Safety
    /// `ptr` must be valid for writes of `size` bytes.
    unsafe fn wipe(ptr: *mut u8, size: usize) {
        // SAFETY: the caller owns this live block of `size` bytes.
        unsafe { std::slice::from_raw_parts_mut(ptr, size) }.zeroize();
    }

    // SAFETY: every method forwards to `System` with the layouts it was given; the
    // only addition is wiping a block the caller is giving up, while it is still ours.
    unsafe impl GlobalAlloc for super::ZeroingAllocator {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: forwarded unchanged.
            unsafe { System.alloc(layout) }
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            // SAFETY: forwarded unchanged.
            unsafe { System.alloc_zeroed(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: `ptr` is a live block of `layout.size()` bytes until freed below.
            unsafe {
                wipe(ptr, layout.size());
                System.dealloc(ptr, layout);
            }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            // Always move, so the old block is wiped rather than left to the allocator.
            // SAFETY: `new_size` is nonzero and, with the old alignment, a valid layout
            // (GlobalAlloc::realloc's contract); both blocks are live where touched.
            unsafe {
                let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
                let new = System.alloc(new_layout);
                if !new.is_null() {
                    std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                    wipe(ptr, layout.size());
                    System.dealloc(ptr, layout);
                }
                new
            }
        }
    }
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
    fn the_zeroing_allocator_allocates_grows_and_frees() {
        use std::alloc::{GlobalAlloc, Layout};
        let a = super::ZeroingAllocator;
        let layout = Layout::from_size_align(64, 8).unwrap();
        // SAFETY (test): the layout is nonzero; the block is used within its size.
        #[allow(unsafe_code)]
        unsafe {
            let p = a.alloc(layout);
            assert!(!p.is_null());
            std::ptr::write_bytes(p, 0xAB, 64);
            let q = a.realloc(p, layout, 256);
            assert_eq!(*q.add(63), 0xAB, "contents moved");
            a.dealloc(q, Layout::from_size_align(256, 8).unwrap());
        }
    }

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
