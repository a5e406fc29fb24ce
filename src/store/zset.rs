//! zset values (placeholder representation; see the family's command module).

/// A zset value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ZSetValue {}

impl ZSetValue {
    pub fn encoding(&self) -> &'static str {
        "hashtable"
    }

    pub fn is_empty(&self) -> bool {
        true
    }

    pub fn approx_size(&self) -> usize {
        0
    }
}
