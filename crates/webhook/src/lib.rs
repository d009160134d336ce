//! GitHub workflow_job webhook intake: signature verification, parsing, filtering.
