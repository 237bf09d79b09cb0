//! keyward-sandbox: the emulated AWS (moto behind keyward's emulator, which adds TOTP
//! checks, fresh sessions, the key lifecycle, fault hooks and IAM authorization) and
//! the isolated computer (its own HOME and a private Secret Service) that keyward's
//! tests and demo run on. The shipped `keyward` binary does not depend on it.

#![forbid(unsafe_code)]

pub mod authz;
pub mod aws;
pub mod computer;
pub mod demo;
pub mod emulator;
pub mod phone;
pub mod pyenv;
pub mod totp;
