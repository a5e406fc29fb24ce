//! `client-output-buffer-limit`: Redis's three classes (normal, replica, pubsub), each a hard
//! limit, a soft limit and the seconds a client may stay over the soft one, in Redis's syntax
//! (`<class> <hard> <soft> <soft-seconds>` groups, sizes with units) and its canonical form
//! (what CONFIG GET shows). raftis enforces the pubsub class (subscribers' pending messages,
//! `crate::server::pubsub`); the others are stored and reported.

/// One class's limits: bytes (0 = no limit) and seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassLimit {
    pub hard: u64,
    pub soft: u64,
    pub soft_secs: u64,
}

/// The limits of the three classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputLimits {
    pub normal: ClassLimit,
    pub replica: ClassLimit,
    pub pubsub: ClassLimit,
}

impl Default for OutputLimits {
    /// Redis 7's defaults: `normal 0 0 0 slave 256mb 64mb 60 pubsub 32mb 8mb 60`.
    fn default() -> Self {
        OutputLimits {
            normal: ClassLimit { hard: 0, soft: 0, soft_secs: 0 },
            replica: ClassLimit { hard: 256 << 20, soft: 64 << 20, soft_secs: 60 },
            pubsub: ClassLimit { hard: 32 << 20, soft: 8 << 20, soft_secs: 60 },
        }
    }
}

/// Redis's `memtoull` for these values: digits with an optional b/k/kb/m/mb/g/gb unit.
fn memory(v: &str) -> Option<u64> {
    super::file::parse_size(v).ok()
}

impl OutputLimits {
    /// Applies `value` (groups of `<class> <hard> <soft> <soft-seconds>`): every group, or
    /// none when any is invalid; an empty value changes nothing (as in Redis). `Err` is
    /// Redis's reason.
    pub fn set(&mut self, value: &str) -> Result<(), String> {
        let args: Vec<&str> = value.split_whitespace().collect();
        if args.is_empty() {
            return Ok(());
        }
        if !args.len().is_multiple_of(4) {
            return Err("Wrong number of arguments in buffer limit configuration.".into());
        }
        let mut next = *self;
        for group in args.chunks(4) {
            let class = match group[0].to_ascii_lowercase().as_str() {
                "normal" => &mut next.normal,
                "replica" | "slave" => &mut next.replica,
                "pubsub" => &mut next.pubsub,
                _ => return Err("Invalid client class specified in buffer limit configuration.".into()),
            };
            // Sizes take units; the seconds are a plain number.
            let secs = Some(group[3]).filter(|s| s.bytes().all(|b| b.is_ascii_digit())).and_then(|s| s.parse().ok());
            let (Some(hard), Some(soft), Some(soft_secs)) = (memory(group[1]), memory(group[2]), secs) else {
                return Err("Error in hard, soft or soft_seconds setting in buffer limit configuration.".into());
            };
            *class = ClassLimit { hard, soft, soft_secs };
        }
        *self = next;
        Ok(())
    }
}

impl std::fmt::Display for OutputLimits {
    /// The canonical form CONFIG GET shows (bytes, Redis's class names).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let classes = [("normal", &self.normal), ("slave", &self.replica), ("pubsub", &self.pubsub)];
        for (i, (name, c)) in classes.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            write!(f, "{sep}{name} {} {} {}", c.hard, c.soft, c.soft_secs)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_syntax_in_canonical_form_out() {
        let mut l = OutputLimits::default();
        assert_eq!(l.to_string(), "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60");
        l.set("pubsub 1mb 512kb 10 REPLICA 1k 0 0").unwrap();
        assert_eq!(l.to_string(), "normal 0 0 0 slave 1000 0 0 pubsub 1048576 524288 10");
        let before = l;
        assert_eq!(l.set(""), Ok(()), "empty: nothing changes");
        assert!(l.set("pubsub 1 0 2kb").unwrap_err().starts_with("Error in hard"), "seconds take no unit");
        assert!(l.set("pubsub 1 2").unwrap_err().starts_with("Wrong number"));
        assert!(l.set("normal 1 1 1 master 1 1 1").unwrap_err().starts_with("Invalid client class"));
        assert!(l.set("normal 1 1 1 pubsub 1 x 1").unwrap_err().starts_with("Error in hard"));
        assert!(l.set("pubsub -1 0 0").unwrap_err().starts_with("Error in hard"));
        assert_eq!(l, before, "an invalid value changes nothing");
    }
}
