//! The fault proxy: keyward's AWS emulator in front of moto, plus fault injection.
//! A test steers it through [`Control`]: faults per Action, and everything the
//! emulator records (calls per Action, MFA codes, issued secrets).

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keyward_emulator::{aws_error, Emulator, Intercepted, Interceptor};

/// A test's action, run just before a request is forwarded.
pub type Hook = Arc<dyn Fn() + Send + Sync>;

#[derive(Clone)]
pub enum Fault {
    /// 400 Throttling.
    Throttle,
    /// 500 InternalFailure.
    ServerError,
    /// Wait this long, then forward.
    Stall(Duration),
    /// Wait this long, then answer 503 without forwarding (a request that never lands).
    Hang(Duration),
    /// Any AWS error.
    Error {
        status: u16,
        code: String,
        message: String,
    },
    /// Run a test's action (e.g. someone else editing a policy), then forward.
    Before(Hook),
}

struct Rule {
    action: Option<String>,
    fault: Fault,
    remaining: usize,
}

/// The emulator's state plus the faults waiting to happen.
#[derive(Clone, Default)]
pub struct Control {
    emu: Emulator,
    rules: Arc<Mutex<Vec<Rule>>>,
}

impl Deref for Control {
    type Target = Emulator;

    fn deref(&self) -> &Emulator {
        &self.emu
    }
}

impl Control {
    /// The next `times` requests with `action` (any action when None) get `fault`.
    pub fn inject(&self, action: Option<&str>, fault: Fault, times: usize) {
        self.rules.lock().expect("rules").push(Rule {
            action: action.map(str::to_owned),
            fault,
            remaining: times,
        });
    }

    pub fn clear_faults(&self) {
        self.rules.lock().expect("rules").clear();
    }

    fn take(&self, action: &str) -> Option<Fault> {
        let mut rules = self.rules.lock().expect("rules");
        let rule = rules
            .iter_mut()
            .find(|r| r.remaining > 0 && r.action.as_deref().is_none_or(|a| a == action))?;
        rule.remaining -= 1;
        Some(rule.fault.clone())
    }
}

impl Interceptor for Control {
    fn before<'a>(&'a self, action: &'a str) -> Intercepted<'a> {
        Box::pin(async move {
            match self.take(action)? {
                Fault::Throttle => Some(aws_error(400, "Throttling", "Rate exceeded")),
                Fault::ServerError => Some(aws_error(
                    500,
                    "InternalFailure",
                    "injected by the fault proxy",
                )),
                Fault::Error {
                    status,
                    code,
                    message,
                } => Some(aws_error(status, &code, &message)),
                Fault::Stall(d) => {
                    tokio::time::sleep(d).await;
                    None
                }
                Fault::Hang(d) => {
                    tokio::time::sleep(d).await;
                    Some(aws_error(
                        503,
                        "ServiceUnavailable",
                        "hung by the fault proxy",
                    ))
                }
                Fault::Before(hook) => {
                    let _ = tokio::task::spawn_blocking(move || hook()).await;
                    None
                }
            }
        })
    }
}

pub struct FaultProxy {
    pub addr: SocketAddr,
    pub control: Control,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts on a free loopback port, forwarding to `upstream` (e.g. `http://127.0.0.1:5000`).
    pub fn start(upstream: &str) -> std::io::Result<Self> {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let control = Control::default();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let ctl = control.clone();
        let upstream = upstream.trim_end_matches('/').to_owned();
        let thread = std::thread::Builder::new()
            .name("fault-proxy".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("proxy runtime");
                rt.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(std_listener).expect("listener");
                    let emu = ctl.emu.clone();
                    keyward_emulator::serve(listener, emu, upstream, Arc::new(ctl), stop_rx).await;
                });
            })?;
        Ok(Self {
            addr,
            control,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
