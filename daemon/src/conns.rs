//! How many connections the daemon keeps, and which one goes when it is full.
//!
//! A flood of idle connections (another process of the user, gone wrong or hostile)
//! must not starve the helper: past the cap the oldest idle connection is shed, and a
//! new one is refused only when every connection is busy. Failed accepts (out of file
//! descriptors) are logged at most once per interval, with a count.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// One live connection, as the registry sees it.
struct Entry {
    /// A request is being served on it.
    busy: Arc<AtomicBool>,
    /// Tells the connection to close once its current request (if any) is answered.
    shed: Arc<Notify>,
}

/// The live connections, oldest first (ids grow).
pub struct Conns {
    cap: std::sync::atomic::AtomicUsize,
    next: Mutex<u64>,
    live: Mutex<BTreeMap<u64, Entry>>,
}

/// A registered connection; dropping it unregisters it.
pub struct Ticket {
    conns: Arc<Conns>,
    id: u64,
    pub busy: Arc<AtomicBool>,
    pub shed: Arc<Notify>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.conns.live.lock().expect("conns").remove(&self.id);
    }
}

impl Conns {
    pub fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self {
            cap: std::sync::atomic::AtomicUsize::new(cap.max(8)),
            next: Mutex::new(0),
            live: Mutex::new(BTreeMap::new()),
        })
    }

    /// Follows a changed limit (the open-file limit can change while we run).
    pub fn set_cap(&self, cap: usize) {
        self.cap.store(cap.max(8), Ordering::SeqCst);
    }

    pub fn len(&self) -> usize {
        self.live.lock().expect("conns").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Registers a new connection, shedding the oldest idle one when full. `None`: every
    /// connection is busy, so this one is refused.
    pub fn admit(self: &Arc<Self>) -> Option<Ticket> {
        let mut live = self.live.lock().expect("conns");
        let cap = self.cap.load(Ordering::SeqCst);
        while live.len() >= cap {
            if !shed_oldest_idle(&mut live) {
                return None;
            }
        }
        let id = {
            let mut next = self.next.lock().expect("conns");
            *next += 1;
            *next
        };
        let busy = Arc::new(AtomicBool::new(false));
        let shed = Arc::new(Notify::new());
        live.insert(
            id,
            Entry {
                busy: busy.clone(),
                shed: shed.clone(),
            },
        );
        Some(Ticket {
            conns: self.clone(),
            id,
            busy,
            shed,
        })
    }

    /// Out of file descriptors: make room by shedding the oldest idle connection.
    pub fn make_room(&self) -> bool {
        shed_oldest_idle(&mut self.live.lock().expect("conns"))
    }
}

/// Removes the oldest connection without a request in progress and tells it to close.
fn shed_oldest_idle(live: &mut BTreeMap<u64, Entry>) -> bool {
    let Some(id) = live
        .iter()
        .find(|(_, e)| !e.busy.load(Ordering::SeqCst))
        .map(|(id, _)| *id)
    else {
        return false;
    };
    if let Some(e) = live.remove(&id) {
        e.shed.notify_one();
    }
    true
}

/// Logs a repeated warning at most once per `every`, with how many were held back.
pub struct RateLimited {
    every: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl RateLimited {
    pub const fn new(every: Duration) -> Self {
        Self {
            every,
            state: Mutex::new((None, 0)),
        }
    }

    /// Whether to log now, and how many were suppressed since the last line.
    pub fn allow(&self) -> Option<u64> {
        let mut st = self.state.lock().expect("rate limit");
        let now = Instant::now();
        match st.0 {
            Some(last) if now.duration_since(last) < self.every => {
                st.1 += 1;
                None
            }
            _ => {
                let suppressed = st.1;
                *st = (Some(now), 0);
                Some(suppressed)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_registry_sheds_the_oldest_idle_and_refuses_only_when_all_are_busy() {
        let conns = Conns::new(8);
        let tickets: Vec<Ticket> = (0..8).map(|_| conns.admit().unwrap()).collect();
        tickets[0].busy.store(true, Ordering::SeqCst);
        let ninth = conns.admit().expect("room made");
        assert_eq!(conns.len(), 8);
        // The oldest idle was the second one (the first is busy).
        let live: Vec<u64> = conns.live.lock().unwrap().keys().copied().collect();
        assert!(live.contains(&tickets[0].id) && !live.contains(&tickets[1].id));
        for t in &tickets {
            t.busy.store(true, Ordering::SeqCst);
        }
        ninth.busy.store(true, Ordering::SeqCst);
        assert!(conns.admit().is_none(), "all busy: refused");
        drop(ninth);
        assert!(conns.admit().is_some(), "a closed one frees a place");
    }

    #[test]
    fn the_warning_is_rate_limited_with_a_count() {
        let r = RateLimited::new(Duration::from_secs(60));
        assert_eq!(r.allow(), Some(0));
        for _ in 0..579 {
            assert_eq!(r.allow(), None);
        }
        r.state.lock().unwrap().0 = Instant::now().checked_sub(Duration::from_secs(61));
        assert_eq!(r.allow(), Some(579));
    }
}
