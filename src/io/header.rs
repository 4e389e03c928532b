//! Strict checks of a safetensors header before the `safetensors` crate reads it, so that a
//! malformed file is refused with a reason that names the tensor: a name given twice (which a
//! JSON map would silently collapse to one), a byte range outside the data, ranges that overlap
//! or leave a gap, or a range whose length does not match the tensor's dtype and shape.

use std::collections::HashSet;
use std::fmt;

use serde::Deserialize;
use serde::de::{MapAccess, Visitor};

/// The header's entries in file order, duplicates kept.
struct Entries(Vec<(String, serde_json::Value)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor;
        impl<'de> Visitor<'de> for EntriesVisitor {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, serde_json::Value>()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(EntriesVisitor)
    }
}

/// Bits per element of a safetensors dtype name, or `None` for a name safetensors does not know.
fn bits_of(dtype: &str) -> Option<usize> {
    Some(match dtype {
        "F4" => 4,
        "F6_E2M3" | "F6_E3M2" => 6,
        "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" | "F8_E8M0" | "F8_E4M3FNUZ" | "F8_E5M2FNUZ" => 8,
        "I16" | "U16" | "F16" | "BF16" => 16,
        "I32" | "U32" | "F32" => 32,
        "I64" | "U64" | "F64" | "C64" => 64,
        _ => return None,
    })
}

/// One tensor's entry: its name and the byte range it claims.
struct Range {
    name: String,
    start: usize,
    end: usize,
}

/// Checks the header of a safetensors file (`bytes` is the whole file). Returns nothing when the
/// header is well formed or cannot be read at all (the `safetensors` crate then says why), and
/// the reason, naming the tensor, when it is readable but wrong.
#[inline(never)]
pub(super) fn check_header(bytes: &[u8]) -> Result<(), String> {
    let Some(prefix) = bytes.get(..8) else { return Ok(()) };
    let Ok(n) = usize::try_from(u64::from_le_bytes(prefix.try_into().expect("8 bytes"))) else {
        return Ok(());
    };
    let Some(header) = n.checked_add(8).and_then(|stop| bytes.get(8..stop)) else { return Ok(()) };
    let Ok(text) = std::str::from_utf8(header) else { return Ok(()) };
    let Ok(Entries(entries)) = serde_json::from_str::<Entries>(text) else { return Ok(()) };
    let data_len = bytes.len() - 8 - n;

    let mut seen = HashSet::new();
    let mut ranges = Vec::new();
    for (name, value) in entries {
        if !seen.insert(name.clone()) {
            return Err(format!("the header names `{name}` twice"));
        }
        if name == "__metadata__" {
            continue;
        }
        let field = |key: &str| value.get(key);
        let dtype = field("dtype").and_then(|d| d.as_str());
        let shape: Option<Vec<usize>> = field("shape")
            .and_then(|s| s.as_array())
            .and_then(|dims| dims.iter().map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok())).collect());
        let offsets: Option<Vec<usize>> = field("data_offsets")
            .and_then(|o| o.as_array())
            .and_then(|o| o.iter().map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok())).collect());
        let (Some(dtype), Some(shape), Some([start, end])) = (dtype, shape, offsets.as_deref()) else {
            return Err(format!(
                "the header's entry for `{name}` needs a \"dtype\" string, a \"shape\" list of sizes \
                 and \"data_offsets\" [start, end]"
            ));
        };
        let (start, end) = (*start, *end);
        let Some(bits) = bits_of(dtype) else {
            return Err(format!("`{name}` has the unknown dtype `{dtype}`"));
        };
        if end < start || end > data_len {
            return Err(format!(
                "`{name}` claims bytes [{start}, {end}) of a data section of {data_len} bytes"
            ));
        }
        let needed = shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .and_then(|n| n.checked_mul(bits))
            .map(|b| b.div_ceil(8));
        if needed != Some(end - start) {
            let needed = needed.map_or("more than fits in memory".to_string(), |b| format!("{b} bytes"));
            return Err(format!(
                "`{name}` ({dtype}, shape {}) needs {needed}, its range [{start}, {end}) has {}",
                crate::error::format_shape(&shape),
                end - start
            ));
        }
        ranges.push(Range { name, start, end });
    }
    ranges.sort_by_key(|r| (r.start, r.end));
    let mut covered = 0;
    for (i, r) in ranges.iter().enumerate() {
        if r.start < covered {
            let other = &ranges[i - 1];
            return Err(format!(
                "the byte ranges of `{}` [{}, {}) and `{}` [{}, {}) overlap",
                other.name, other.start, other.end, r.name, r.start, r.end
            ));
        }
        if r.start > covered {
            return Err(format!("bytes [{covered}, {}) of the data belong to no tensor", r.start));
        }
        covered = r.end;
    }
    if covered != data_len {
        return Err(format!("bytes [{covered}, {data_len}) of the data belong to no tensor"));
    }
    Ok(())
}
