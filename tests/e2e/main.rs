//! End-to-end tests: built binaries in an isolated HOME, against moto behind the fault
//! proxy, a real Secret Service, and the AWS CLI and boto3 as clients.
//! All in one test binary to keep link time down.

mod broker;
mod common;
mod daemon;
mod demo;
mod keys;
mod revoke;
mod setup;
mod tty;
