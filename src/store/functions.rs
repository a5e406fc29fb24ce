//! The replicated Functions state: libraries loaded with FUNCTION LOAD, each with its code and
//! the functions it registered (name, flags, description). Changed only by applying log
//! entries; snapshots carry it (frame kind 6), so FCALL finds a function on every replica.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One function of a library.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionDef {
    pub name: String,
    /// Redis's flags: `no-writes`, `allow-oom`, `allow-stale`, `no-cluster`, ...
    pub flags: Vec<String>,
    pub description: Option<String>,
}

impl FunctionDef {
    /// Whether FCALL_RO may call it.
    pub fn is_read_only(&self) -> bool {
        self.flags.iter().any(|f| f == "no-writes")
    }
}

/// One library: its code (shebang line included) and functions, by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Library {
    pub name: String,
    pub code: Bytes,
    pub functions: Vec<FunctionDef>,
}

/// Every library, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Functions {
    libraries: BTreeMap<String, Library>,
}

/// What a snapshot holds of [`Functions`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionsImage {
    pub libraries: Vec<Library>,
}

impl Functions {
    pub fn is_empty(&self) -> bool {
        self.libraries.is_empty()
    }

    pub fn library(&self, name: &str) -> Option<&Library> {
        self.libraries.get(name)
    }

    /// Every library, by name.
    pub fn libraries(&self) -> impl Iterator<Item = &Library> {
        self.libraries.values()
    }

    /// The library holding function `name` (any case, as Redis's function names), and the
    /// function.
    pub fn find(&self, name: &str) -> Option<(&Library, &FunctionDef)> {
        let named = |f: &&FunctionDef| f.name.eq_ignore_ascii_case(name);
        self.libraries.values().find_map(|lib| lib.functions.iter().find(named).map(|f| (lib, f)))
    }

    /// Adds (or with `replace`, replaces) `lib`; refuses a library name in use or a function
    /// name another library has, with Redis's errors.
    pub fn load(&mut self, lib: Library, replace: bool) -> Result<(), String> {
        if self.libraries.contains_key(&lib.name) && !replace {
            return Err(format!("ERR Library '{}' already exists", lib.name));
        }
        for f in &lib.functions {
            if let Some((other, _)) = self.find(&f.name).filter(|(other, _)| other.name != lib.name) {
                let _ = other;
                return Err(format!("ERR Function {} already exists", f.name));
            }
        }
        self.libraries.insert(lib.name.clone(), lib);
        Ok(())
    }

    /// FUNCTION DELETE: whether the library existed.
    pub fn delete(&mut self, name: &str) -> bool {
        self.libraries.remove(name).is_some()
    }

    pub fn flush(&mut self) {
        self.libraries.clear();
    }

    pub fn function_count(&self) -> usize {
        self.libraries.values().map(|l| l.functions.len()).sum()
    }

    pub fn image(&self) -> FunctionsImage {
        FunctionsImage { libraries: self.libraries.values().cloned().collect() }
    }

    pub fn from_image(image: FunctionsImage) -> Result<Functions, String> {
        let mut out = Functions::default();
        for lib in image.libraries {
            out.load(lib, false).map_err(|e| format!("snapshot libraries: {e}"))?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lib(name: &str, fns: &[&str]) -> Library {
        let functions =
            fns.iter().map(|f| FunctionDef { name: f.to_string(), flags: vec![], description: None }).collect();
        Library { name: name.into(), code: Bytes::from_static(b"code"), functions }
    }

    #[test]
    fn names_are_unique_across_libraries() {
        let mut f = Functions::default();
        assert!(f.load(lib("a", &["f1", "f2"]), false).is_ok());
        assert_eq!(f.load(lib("a", &["f3"]), false), Err("ERR Library 'a' already exists".into()));
        assert_eq!(f.load(lib("b", &["f2"]), false), Err("ERR Function f2 already exists".into()));
        assert!(f.load(lib("a", &["f1"]), true).is_ok(), "REPLACE may keep its own names");
        assert_eq!(f.find("f1").map(|(l, _)| l.name.as_str()), Some("a"));
        assert!(f.find("f2").is_none());
        assert_eq!(Functions::from_image(f.image()), Ok(f.clone()));
        assert!(f.delete("a") && !f.delete("a"));
    }
}
