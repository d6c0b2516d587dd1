//! `docs/permissions.md` is the permission table rendered: regenerate it with
//! `cargo run -p mission-control -- permissions > docs/permissions.md` when the table changes.

#[test]
fn docs_permissions_md_is_the_rendered_table() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/permissions.md");
    let on_disk = std::fs::read_to_string(&path).expect("docs/permissions.md exists");
    assert!(
        on_disk == mc_auth::table::markdown(),
        "docs/permissions.md is stale: run `cargo run -p mission-control -- permissions > docs/permissions.md`"
    );
}
