//! The resource server keeps its layers (ARCHITECTURE.md): only `routes` (with its
//! `AppState`) and the wiring know axum's routing, nothing below `routes` imports it or
//! the wiring, and no files import each other in a loop.

use std::path::Path;

use service_kit::layers::{Rules, check};

const BELOW_HTTP: [&str; 6] = [
    "auth",
    "domain",
    "profiles",
    "profile_cache",
    "profile_changes",
    "storage",
];

#[test]
fn the_resource_server_sources_keep_their_layers_and_have_no_import_loops() {
    let mut forbidden = vec![("routes", "startup")];
    for module in BELOW_HTTP {
        forbidden.extend([(module, "routes"), (module, "startup")]);
    }
    let rules = Rules {
        forbidden: &forbidden,
        // `auth` joins jwt-auth's extractor and errors to the service: HTTP types.
        external_only_in: &[("axum", &["routes", "startup", "auth"])],
        entry_points: &["lib.rs", "main.rs"],
    };
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let violations = check(&src, &rules).expect("the sources are readable");
    let report: Vec<String> = violations.iter().map(ToString::to_string).collect();
    assert!(report.is_empty(), "{}", report.join("\n"));
}
