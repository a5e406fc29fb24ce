//! Property checked: **replicas converge** (issue 4, "Checkers": "replicas converge to identical
//! state after healing").
//!
//! After the last fault is healed and the cluster has had time to catch up, the harness asks
//! every node for a digest of its own copy of the keyspace (`READONLY` then `DEBUG
//! DIGEST-EXACT`, served from the node's local state machine) and passes them here. Any two
//! different digests are a violation; so is an empty list (nothing was compared). Waiting for
//! catch-up (polling until the digests agree or a virtual-time deadline passes) is the
//! harness's job: this function judges the last set of digests it got.

use super::Violation;
use std::collections::BTreeMap;

/// The property name in violations.
pub const PROPERTY: &str = "replicas converge";

/// `digests` holds (node id, digest of that node's copy).
pub fn check(digests: &[(u64, String)]) -> Result<(), Violation> {
    let mut groups: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for (node, digest) in digests {
        groups.entry(digest).or_default().push(*node);
    }
    let detail = match groups.len() {
        1 => return Ok(()),
        0 => "no digests to compare".to_string(),
        _ => {
            let parts: Vec<String> = groups.iter().map(|(d, nodes)| format!("nodes {nodes:?} have {d}")).collect();
            format!("replicas differ after healing: {}", parts.join("; "))
        }
    };
    Err(Violation { property: PROPERTY, detail, ops: Vec::new() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_convergence_accepts_equal_digests() {
        let d = [(1, "ab".to_string()), (2, "ab".to_string()), (3, "ab".to_string())];
        assert!(check(&d).is_ok());
    }

    #[test]
    fn check_convergence_rejects_divergent_digests() {
        let d = [(1, "ab".to_string()), (2, "cd".to_string()), (3, "ab".to_string())];
        let v = check(&d).unwrap_err();
        assert_eq!(v.property, PROPERTY);
        assert!(v.detail.contains("nodes [1, 3] have ab") && v.detail.contains("nodes [2] have cd"), "{v}");
        assert!(check(&[]).is_err(), "nothing compared is not convergence");
    }
}
