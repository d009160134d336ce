//! The wasmtime host for runway's WebAssembly routing and throttling policies.
