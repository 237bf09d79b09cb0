//! IAM authorization for the emulated AWS: every request is judged by an evaluator
//! keyward did not write (iam-rs), with AWS's request context built from the account.

pub mod account;
pub mod calls;
/// The evaluation logic lives in its own crate: `keyward audit` judges admins with it too.
pub use keyward_policy as evaluate;
pub mod identity;
pub mod storage;
