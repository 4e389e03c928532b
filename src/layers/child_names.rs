//! [`ChildNames`]: the names a block gives its fixed children (`"branch"`, `"shortcut"`,
//! `"gate"`, `"head"`, …), which a user may change with [`crate::Layer::rename_child`] so that
//! the block's paths and parameter names mirror a PyTorch module's attributes.

use crate::{Error, Result};

/// Why `name` cannot name a child, if it cannot: empty, or holding the `.` that separates the
/// names of a path.
pub(crate) fn refused_name(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("a name cannot be empty".into());
    }
    if name.contains('.') {
        return Some(format!("`{name}` has a `.`, which separates names in a path"));
    }
    None
}

/// The current names of a block's `N` fixed children, each known by its role (the default
/// name, e.g. `"branch"`), in the block's order.
#[derive(Debug, Clone)]
pub(crate) struct ChildNames<const N: usize> {
    roles: [&'static str; N],
    names: [String; N],
}

impl<const N: usize> ChildNames<N> {
    /// Every child called by its role.
    pub(crate) fn new(roles: [&'static str; N]) -> Self {
        ChildNames { roles, names: roles.map(String::from) }
    }

    /// The current name of child `index` (the block's constant for that role).
    pub(crate) fn get(&self, index: usize) -> &str {
        &self.names[index]
    }

    /// The index of the child now called `name`.
    pub(crate) fn index_of(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// Renames the child called `from` to `to`. `present[i]` says whether child `i` exists
    /// (an absent optional child, such as the identity's shortcut, can be renamed but does not
    /// hold its name); `taken` says whether another name in the block (e.g. a flattened
    /// branch's children) already uses `to`. `owner` describes the block for errors.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the block when there is no child `from` or `to` is not
    /// allowed or taken; nothing changes.
    pub(crate) fn rename(
        &mut self,
        owner: &str,
        from: &str,
        to: &str,
        present: [bool; N],
        taken: &dyn Fn(&str) -> bool,
    ) -> Result<()> {
        let refuse = |why: String| Err(Error::config(owner, "name", why));
        let Some(index) = self.index_of(from) else {
            return refuse(format!("cannot rename `{from}` to `{to}`: {}", self.listing()));
        };
        if let Some(why) = refused_name(to) {
            return refuse(format!("cannot rename `{from}`: {why}"));
        }
        let clash = (0..N).find(|&i| i != index && present[i] && self.names[i] == to);
        if clash.is_some() || taken(to) {
            return refuse(format!("cannot rename `{from}` to `{to}`: `{to}` already names another child"));
        }
        self.names[index] = to.to_string();
        Ok(())
    }

    /// "its children are `a` (role x), `b`" for errors.
    pub(crate) fn listing(&self) -> String {
        let names: Vec<String> = (0..N)
            .map(|i| match (self.names[i].as_str(), self.roles[i]) {
                (name, role) if name == role => format!("`{name}`"),
                (name, role) => format!("`{name}` (the {role})"),
            })
            .collect();
        format!("its children are {}", names.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renaming_checks_the_name_and_keeps_the_roles() {
        let mut names = ChildNames::new(["branch", "scale", "shortcut"]);
        let none = |_: &str| false;
        names.rename("Residual", "shortcut", "proj", [true, false, true], &none).unwrap();
        assert_eq!((names.get(2), names.index_of("proj")), ("proj", Some(2)));
        // The absent scale does not hold its name; a present child does.
        names.rename("Residual", "branch", "scale", [true, false, true], &none).unwrap();
        let err = names.rename("Residual", "scale", "proj", [true, false, true], &none).unwrap_err();
        assert!(err.to_string().contains("`proj` already names another child"), "{err}");
        for bad in ["", "a.b"] {
            let err = names.rename("Residual", "proj", bad, [true; 3], &none).unwrap_err();
            assert!(err.to_string().contains("Residual"), "{err}");
        }
        let err = names.rename("Residual", "branch", "body", [true; 3], &none).unwrap_err();
        assert!(err.to_string().contains("`scale` (the branch)"), "{err}");
        let err = names.rename("Residual", "proj", "fc1", [true; 3], &|n| n == "fc1").unwrap_err();
        assert!(err.to_string().contains("already names"), "{err}");
        assert_eq!(names.get(2), "proj", "nothing changed by a refused rename");
    }
}
