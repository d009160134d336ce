//! A loopback GitHub emulator for tests and runway local: REST API, runners, signed webhooks.
