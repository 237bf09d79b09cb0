//! The emulated AWS of one test (moto behind keyward's emulator, from the sandbox)
//! plus fault injection. A test steers it through [`Control`]: faults per action, and
//! everything the emulator records (calls per action, MFA codes, issued secrets,
//! authorization decisions).

use std::ops::Deref;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keyward_sandbox::aws::EmulatedAws;
use keyward_sandbox::emulator::{aws_error, Emulator, Intercepted, Interceptor};

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

/// One test's emulated AWS, shared by the computers of that test.
pub struct FaultProxy {
    pub control: Control,
    aws: EmulatedAws,
}

impl FaultProxy {
    /// Starts moto (`moto_server`) and the emulator in front of it.
    pub fn start(moto_server: &Path, home: &Path) -> anyhow::Result<Self> {
        let control = Control::default();
        let aws = EmulatedAws::start(
            moto_server,
            home,
            control.emu.clone(),
            Arc::new(control.clone()),
        )?;
        Ok(Self { control, aws })
    }

    pub fn url(&self) -> String {
        self.aws.url()
    }

    /// moto itself, not through the emulator.
    pub fn moto_url(&self) -> String {
        self.aws.moto.url()
    }
}
