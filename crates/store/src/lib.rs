//! runway state store.
