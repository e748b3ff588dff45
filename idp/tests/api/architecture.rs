//! The source tree keeps its shape (ARCHITECTURE.md): the HTTP layer alone knows axum,
//! the capabilities never import the HTTP layer or the wiring, nothing but the CLI
//! imports the wiring, and no files import each other in a loop.

use std::path::Path;

use service_kit::layers::{Rules, check};

const CAPABILITIES: [&str; 9] = [
    "accounts", "factors", "sessions", "oauth", "keys", "mail", "events", "guards", "storage",
];

#[test]
fn the_idp_sources_keep_their_layers_and_have_no_import_loops() {
    let mut forbidden = Vec::new();
    for capability in CAPABILITIES {
        for upper in ["http", "app", "cli"] {
            forbidden.push((capability, upper));
        }
    }
    forbidden.extend([("http", "app"), ("http", "cli"), ("app", "cli")]);
    // The guards serve every capability and import none of them but the email's form;
    // mail is a service the others use, and uses none of them.
    for capability in ["sessions", "oauth", "keys", "mail"] {
        forbidden.push(("guards", capability));
    }
    for capability in ["accounts", "sessions", "oauth", "keys"] {
        forbidden.push(("mail", capability));
    }
    // Events are queued by the capabilities whose changes they tell, and know none of
    // them: only the keys they are signed with.
    for capability in ["accounts", "factors", "sessions", "oauth", "mail", "guards"] {
        forbidden.push(("events", capability));
    }
    let http_only: &[&str] = &["http", "app"];
    // Pages and mail are both rendered from templates.
    let templates: &[&str] = &["http", "app", "mail"];
    let rules = Rules {
        forbidden: &forbidden,
        external_only_in: &[
            ("axum", http_only),
            ("tower_sessions", http_only),
            ("tower_sessions_sqlx_store", http_only),
            ("askama", templates),
            ("reqwest", &["events"]),
        ],
        entry_points: &["lib.rs", "main.rs"],
    };
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let violations = check(&src, &rules).expect("the sources are readable");
    let report: Vec<String> = violations.iter().map(ToString::to_string).collect();
    assert!(report.is_empty(), "{}", report.join("\n"));
}
