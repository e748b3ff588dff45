//! What limits each figure, from profiling the services (written by people, printed at
//! the end of `docs/BENCHMARKS.md`). Keep it true when the code changes.

pub const NOTES: &str = r#"
To be filled in after profiling.
"#;
