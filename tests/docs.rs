//! The documentation stays true: every command in the table is listed in docs/COMMANDS.md,
//! and the README names the two set-up commands.

#[test]
fn commands_doc_lists_every_command() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/COMMANDS.md")).expect("docs/COMMANDS.md");
    let missing: Vec<String> = raftis::cmd::all_commands()
        .into_iter()
        .filter(|c| !c.has_flag("internal"))
        .map(|c| c.name.to_ascii_uppercase())
        .filter(|name| !doc.contains(&format!("`{name}`")))
        .collect();
    assert!(missing.is_empty(), "commands missing from docs/COMMANDS.md: {missing:?}");
}

#[test]
fn readme_names_the_setup_commands() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md");
    assert!(readme.contains("cargo run --release"));
    assert!(readme.contains("cargo test --features sim"));
}
