//! keyward-emulator: the parts of AWS that moto lacks, in front of moto. Used by
//! `keyward demo` and by the test suite (which adds fault injection).

mod emulator;
pub mod totp;

pub use emulator::{aws_error, serve, Emulator, Intercepted, Interceptor, NoFaults};
