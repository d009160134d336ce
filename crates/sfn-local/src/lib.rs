//! A Step Functions-compatible HTTP API (AWS JSON 1.0) over the local States Language engine.
