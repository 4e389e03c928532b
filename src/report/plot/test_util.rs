//! Test helpers: a fresh scratch directory per test, and counting in SVG text.

use std::path::PathBuf;

/// A new, empty directory under the system temp dir, unique to this process and `name`.
pub(crate) fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gradflow-plot-{}-{name}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The texts of all `<text …>…</text>` elements, trimmed, in document order.
pub(crate) fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|rest| {
            let body = &rest[rest.find('>')? + 1..];
            Some(body[..body.find("</text>")?].trim().to_string())
        })
        .collect()
}

/// Number of `<rect` elements.
pub(crate) fn count_rects(svg: &str) -> usize {
    svg.matches("<rect").count()
}

/// The opening tags of all `<name …>` elements.
pub(crate) fn elements<'s>(svg: &'s str, name: &str) -> Vec<&'s str> {
    let open = format!("<{name} ");
    svg.match_indices(&open)
        .map(|(start, _)| {
            let rest = &svg[start..];
            &rest[..rest.find('>').map_or(rest.len(), |end| end + 1)]
        })
        .collect()
}

/// The value of attribute `name` in an element's opening tag.
pub(crate) fn attribute<'s>(element: &'s str, name: &str) -> Option<&'s str> {
    let key = format!(" {name}=\"");
    let start = element.find(&key)? + key.len();
    Some(&element[start..start + element[start..].find('"')?])
}

/// The points of each `<polyline>` stroked in `color` (e.g. `"#1F77B4"`).
pub(crate) fn polylines_in(svg: &str, color: &str) -> Vec<Vec<(i32, i32)>> {
    elements(svg, "polyline")
        .into_iter()
        .filter(|e| attribute(e, "stroke") == Some(color))
        .map(|e| {
            attribute(e, "points")
                .unwrap_or("")
                .split_whitespace()
                .map(|p| {
                    let (x, y) = p.split_once(',').unwrap();
                    (x.parse().unwrap(), y.parse().unwrap())
                })
                .collect()
        })
        .collect()
}

/// The `y` attribute of the `<text>` element whose content is exactly `content`.
pub(crate) fn text_y(svg: &str, content: &str) -> Option<i32> {
    svg.split("<text").skip(1).find_map(|rest| {
        let (tag, body) = rest.split_once('>')?;
        let text = body[..body.find("</text>")?].trim();
        (text == content).then(|| attribute(tag, "y")?.parse().ok()).flatten()
    })
}
