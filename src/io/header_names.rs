//! The duplicate-name check of a safetensors header. The header is a JSON object from tensor
//! names to their dtype, shape and byte range; JSON does not forbid a name appearing twice, and
//! the `safetensors` crate keeps the last entry of a repeated name without saying so. A file
//! with a repeated name is ambiguous (which entry did the writer mean?), so gradflow refuses it.

use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};

/// The first name that appears twice in the header of the safetensors file `bytes`, if any.
/// Returns `None` too when the header cannot be read as a JSON object: the `safetensors` crate
/// reports that itself.
pub(crate) fn repeated_name(bytes: &[u8]) -> Option<String> {
    let len = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    let end = usize::try_from(len).ok()?.checked_add(8)?;
    let header = bytes.get(8..end)?;
    let mut de = serde_json::Deserializer::from_slice(header);
    de.deserialize_map(FirstRepeat).ok().flatten()
}

/// Visits the top-level keys, remembering each, and stops at the first repeated one.
struct FirstRepeat;

impl<'de> Visitor<'de> for FirstRepeat {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            map.next_value::<IgnoredAny>()?;
            if !seen.insert(key.clone()) {
                return Ok(Some(key));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(header: &str) -> Vec<u8> {
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes
    }

    #[test]
    fn finds_the_first_repeated_name_and_nothing_in_a_valid_header() {
        let a = r#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}"#;
        let twice = format!(r#"{a},"w":{{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}}}"#);
        assert_eq!(repeated_name(&file(&twice)), Some("w".to_string()));
        assert_eq!(repeated_name(&file(&format!("{a}}}"))), None);
        assert_eq!(repeated_name(b"\xff\xff\xff\xff\xff\xff\xff\xff"), None);
        assert_eq!(repeated_name(b"abc"), None);
        assert_eq!(repeated_name(&file("[1, 2]")), None);
    }
}
