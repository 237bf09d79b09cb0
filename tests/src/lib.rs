//! The test world: moto behind the fault proxy (keyward's emulator plus fault
//! injection), a private D-Bus with gnome-keyring as the Secret Service, an isolated
//! HOME and XDG dirs, and the real AWS CLI and boto3 as clients.

pub mod proxy;
pub mod world;

pub use keyward_emulator::totp;
