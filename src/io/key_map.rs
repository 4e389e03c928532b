//! [`KeyMap`]: renaming tensor names between a file and a model, by ordered pattern rules and/or
//! a function.
//!
//! Patterns work on dotted segments rather than characters, which is what state-dict names are
//! made of, so gradflow needs no regular-expression engine (the `regex` crate would add three
//! crates to every user's build for what these rules do).

use std::fmt;
use std::sync::Arc;

use crate::{Error, Result};

/// One segment of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// Matches this segment exactly.
    Literal(String),
    /// `*`: any one segment, captured.
    One,
    /// `**`: any number of segments (zero included), captured.
    Any,
}

/// A rule: a pattern over a whole dotted name and its replacement.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    pattern: Vec<Segment>,
    source: String,
    replacement: String,
}

impl Rule {
    /// The captures when `segments` match the whole pattern.
    ///
    /// A backtracking search, with the positions `(pattern segment, name segment)` already seen
    /// to fail remembered: without them, a pattern of k `**` takes time exponential in k (ten
    /// `**` against a name of 30 segments took 40 s); with them, at most
    /// `(pattern length + 1) · (segments + 1)` positions are tried, each once.
    fn matches(&self, segments: &[&str]) -> Option<Vec<String>> {
        struct Search<'a> {
            pattern: &'a [Segment],
            segments: &'a [&'a str],
            /// Captures as ranges of segments, joined only once the whole name matches.
            captures: Vec<(usize, usize)>,
            failed: Vec<bool>,
        }
        impl Search<'_> {
            fn go(&mut self, p: usize, s: usize) -> bool {
                let at = p * (self.segments.len() + 1) + s;
                if self.failed[at] {
                    return false;
                }
                let found = match self.pattern.get(p) {
                    None => s == self.segments.len(),
                    Some(Segment::Literal(l)) => {
                        self.segments.get(s).is_some_and(|seg| seg == l) && self.go(p + 1, s + 1)
                    }
                    Some(Segment::One) => s < self.segments.len() && self.capture(p, s, s + 1),
                    Some(Segment::Any) => (s..=self.segments.len()).any(|end| self.capture(p, s, end)),
                };
                if !found {
                    self.failed[at] = true;
                }
                found
            }

            /// Captures segments `start..end` for pattern segment `p` and matches the rest.
            fn capture(&mut self, p: usize, start: usize, end: usize) -> bool {
                self.captures.push((start, end));
                self.go(p + 1, end) || {
                    self.captures.pop();
                    false
                }
            }
        }
        let mut search = Search {
            pattern: &self.pattern,
            segments,
            captures: Vec::new(),
            failed: vec![false; (self.pattern.len() + 1) * (segments.len() + 1)],
        };
        search.go(0, 0).then(|| search.captures.iter().map(|&(a, b)| segments[a..b].join(".")).collect())
    }

    /// The replacement with `{1}`, `{2}`, … substituted, empty segments (from an empty `**`)
    /// dropped.
    fn replace(&self, captures: &[String]) -> String {
        let mut out = self.replacement.clone();
        for (i, c) in captures.iter().enumerate().rev() {
            out = out.replace(&format!("{{{}}}", i + 1), c);
        }
        out.split('.').filter(|s| !s.is_empty()).collect::<Vec<_>>().join(".")
    }
}

/// A function from one name to another.
type KeyFunction = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// How tensor names are renamed on their way between a file and a model: ordered pattern rules,
/// then optionally a function. On loading ([`crate::io::LoadOptions::remap`]) it maps each name
/// in the file to the model's name; on saving ([`crate::io::save_safetensors_with`]) each of
/// the model's names to the file's.
///
/// A pattern is a dotted name whose segments are literal, `*` (any one segment) or `**` (any
/// number of segments, none included); it must match the whole name. The replacement refers to
/// what the wildcards matched, in order, as `{1}`, `{2}`, …; segments left empty (a `**` that
/// matched nothing) are dropped. Every rule is tried in order on the name the rules before it
/// made, and the function, if any, sees the result.
///
/// ```
/// use gradflow::io::KeyMap;
///
/// // A PyTorch module with `self.features = nn.Sequential(...)` and `self.head = nn.Linear`,
/// // loaded into a flat gradflow chain whose layers are named as the module's.
/// let map = KeyMap::new()
///     .rule("features.**", "{1}")?
///     .rule("blocks.*.branch.**", "block{1}.{2}")?;
/// assert_eq!(map.apply("features.fc1.weight"), "fc1.weight");
/// assert_eq!(map.apply("blocks.3.branch.0.bias"), "block3.0.bias");
/// assert_eq!(map.apply("head.weight"), "head.weight"); // no rule matches: unchanged
///
/// let upper = KeyMap::new().function(|name| name.replace("ln_", "norm"));
/// assert_eq!(upper.apply("ln_1.weight"), "norm1.weight");
/// # Ok::<(), gradflow::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct KeyMap {
    rules: Vec<Rule>,
    function: Option<KeyFunction>,
}

impl fmt::Debug for KeyMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rules: Vec<String> =
            self.rules.iter().map(|r| format!("{} → {}", r.source, r.replacement)).collect();
        f.debug_struct("KeyMap").field("rules", &rules).field("function", &self.function.is_some()).finish()
    }
}

impl PartialEq for KeyMap {
    /// Equal rules, and the same function (the same `Arc`) or none.
    fn eq(&self, other: &Self) -> bool {
        self.rules == other.rules
            && match (&self.function, &other.function) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                _ => false,
            }
    }
}

impl Eq for KeyMap {}

impl KeyMap {
    /// The identity: every name unchanged.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a rule: names matching `pattern` become `replacement` (see [`KeyMap`]).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the rule when the pattern is empty or has an empty
    /// segment, or the replacement refers to a wildcard the pattern does not have.
    pub fn rule(mut self, pattern: &str, replacement: &str) -> Result<Self> {
        let refuse =
            |why: &str| Err(Error::config(format!("KeyMap rule `{pattern}` → `{replacement}`"), "rule", why));
        if pattern.is_empty() || pattern.split('.').any(str::is_empty) {
            return refuse("the pattern has an empty segment");
        }
        let segments: Vec<Segment> = pattern
            .split('.')
            .map(|s| match s {
                "*" => Segment::One,
                "**" => Segment::Any,
                literal => Segment::Literal(literal.to_string()),
            })
            .collect();
        let wildcards = segments.iter().filter(|s| !matches!(s, Segment::Literal(_))).count();
        let mut rest = replacement;
        while let Some(open) = rest.find('{') {
            let close = rest[open..].find('}').map(|c| open + c);
            let number = close.and_then(|c| rest[open + 1..c].parse::<usize>().ok());
            match number {
                Some(n) if (1..=wildcards).contains(&n) => rest = &rest[close.unwrap_or(open) + 1..],
                _ => {
                    return refuse(&format!(
                        "the replacement may refer to {{1}}…{{{wildcards}}} (one per wildcard of the pattern), \
                         not `{}`",
                        &rest[open..close.map_or(rest.len(), |c| c + 1)]
                    ));
                }
            }
        }
        self.rules.push(Rule {
            pattern: segments,
            source: pattern.to_string(),
            replacement: replacement.to_string(),
        });
        Ok(self)
    }

    /// Sets a function applied after the rules (replacing any set before).
    pub fn function(mut self, f: impl Fn(&str) -> String + Send + Sync + 'static) -> Self {
        self.function = Some(Arc::new(f));
        self
    }

    /// Whether the map leaves every name unchanged (no rule, no function).
    pub fn is_identity(&self) -> bool {
        self.rules.is_empty() && self.function.is_none()
    }

    /// The name `key` becomes, or an error naming `key` when the function panics (loading and
    /// saving go through this, so a bad closure fails the call before anything changes).
    ///
    /// ```
    /// use gradflow::io::KeyMap;
    ///
    /// let map = KeyMap::new().function(|name| name[..name.find('.').unwrap()].to_string());
    /// assert_eq!(map.try_apply("fc1.weight")?, "fc1");
    /// let err = map.try_apply("weight").unwrap_err();
    /// assert!(err.to_string().contains("`weight`"), "{err}");
    /// # Ok::<(), gradflow::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the key and the panic's message.
    pub fn try_apply(&self, key: &str) -> Result<String> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.apply(key))).map_err(|panic| {
            let message = crate::error::panic_message(panic.as_ref());
            Error::config(
                "KeyMap",
                "function",
                format!("the key map's function panicked on `{key}`: {message}"),
            )
        })
    }

    /// The name `key` becomes. A panic in the function propagates; [`KeyMap::try_apply`]
    /// turns it into an error.
    pub fn apply(&self, key: &str) -> String {
        let mut name = key.to_string();
        for rule in &self.rules {
            let segments: Vec<&str> = name.split('.').collect();
            if let Some(captures) = rule.matches(&segments) {
                name = rule.replace(&captures);
            }
        }
        match &self.function {
            Some(f) => f(&name),
            None => name,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_segments_and_rules_apply_in_order() {
        let map = KeyMap::new().rule("a.*.c", "x.{1}").unwrap().rule("x.**", "{1}.y").unwrap();
        assert_eq!(map.apply("a.b.c"), "b.y");
        assert_eq!(map.apply("a.b.b.c"), "a.b.b.c");
        assert_eq!(map.apply("x"), "y", "an empty ** drops its segment");
        let map = KeyMap::new().rule("**.branch.**", "{1}.{2}").unwrap();
        assert_eq!(map.apply("1.branch.0.weight"), "1.0.weight");
        assert_eq!(map.apply("branch.w"), "w");
    }

    #[test]
    fn bad_rules_are_refused_naming_the_rule() {
        for (p, r) in [("", "x"), ("a..b", "x"), ("a.*", "{2}"), ("a.*", "{x}"), ("a", "{1")] {
            let err = KeyMap::new().rule(p, r).unwrap_err().to_string();
            assert!(err.contains(&format!("`{p}` → `{r}`")), "{err}");
        }
    }
}
