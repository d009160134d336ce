//! No code: this crate only turns on features of shared dependencies (see its Cargo.toml), so
//! that the `runway` binary built alone and the test build compile each dependency once.
