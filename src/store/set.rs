//! set values (placeholder representation; see the family's command module).

/// A set value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SetValue {}

impl SetValue {
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
