//! This computer's side of keyward, shared by the commands: keyward's profiles and the
//! `credential_process` lines in `~/.aws/config`, the keychain, and keywardd.

pub mod aws_config;
pub mod daemon;
pub mod endpoint;
pub mod keychain;
pub mod profiles;
