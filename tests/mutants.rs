//! The planted bugs of the mutation test (`sim/mutants/*.patch`, docs/SIMULATION.md) must keep
//! applying to the code as it changes: a patch that no longer applies measures nothing. This
//! checks each one with `git apply --check` (the mutation test itself is long and runs by hand).

use std::path::Path;
use std::process::Command;

#[test]
fn every_planted_bug_still_applies() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut patches: Vec<_> = std::fs::read_dir(root.join("sim/mutants"))
        .expect("sim/mutants")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "patch"))
        .collect();
    patches.sort();
    assert!(patches.len() >= 12, "the mutation test needs at least 12 planted bugs, found {}", patches.len());
    let mut stale = Vec::new();
    for patch in &patches {
        let text = std::fs::read_to_string(patch).expect("read patch");
        assert!(text.starts_with("Planted bug: "), "{} must start by saying what it breaks", patch.display());
        let out = Command::new("git")
            .args(["apply", "--check", "--unsafe-paths"])
            .arg(patch)
            .current_dir(root)
            .output()
            .expect("git must be installed to check the planted bugs");
        if !out.status.success() {
            stale.push(format!("{}: {}", patch.display(), String::from_utf8_lossy(&out.stderr).trim()));
        }
    }
    assert!(stale.is_empty(), "planted bugs that no longer apply (redo them against the code):\n{}", stale.join("\n"));
}
