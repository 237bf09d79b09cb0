//! The daemon as a process: socket, single instance, limits.
