//! GitHub REST client for runway: App auth, JIT runner configs, jobs, runners.
