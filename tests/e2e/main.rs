//! End-to-end tests: built binaries in an isolated HOME, against moto behind keyward's
//! emulator (which authorizes every request with an IAM evaluator keyward did not
//! write), a real Secret Service, and the AWS CLI and boto3 as clients.
//! All in one test binary to keep link time down.

mod access;
mod apps;
mod attack;
mod audit;
mod broker;
mod clients;
mod common;
mod daemon;
mod demo;
mod diagnostics;
mod escalation;
mod exec;
mod faults;
mod headless;
mod keys;
mod memory;
mod mfa;
mod prompt;
mod revoke;
mod rotate;
mod setup;
mod signatures;
mod trust;
mod tty;
mod upgrade;
