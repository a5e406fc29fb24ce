//! List values.

use bytes::Bytes;
use std::collections::VecDeque;

/// A list; Redis 7.0 reports every list as `quicklist`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListValue {
    pub items: VecDeque<Bytes>,
}

impl ListValue {
    pub fn encoding(&self) -> &'static str {
        "quicklist"
    }

    pub fn approx_size(&self) -> usize {
        self.items.iter().map(|b| b.len() + 16).sum()
    }
}
