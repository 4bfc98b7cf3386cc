//! Target descriptors: a short, deterministic name for the element an action was on,
//! chosen to survive a redeploy.
//!
//! Node ids change with every page load and CSS paths with every layout change, so the model
//! names targets by the most stable fact capture.js sent ([`event::Target`]), in this order:
//!
//! | descriptor | from | example |
//! |---|---|---|
//! | `testid:<v>` | `data-testid` (or `data-test-id`, `data-test`) | `testid:add-to-cart` |
//! | `id:<v>` | a non-generated `id` | `id:email` |
//! | `role:<role>[<name>]` | ARIA role and accessible name (only when a name is present) | `role:button[Pay now]` |
//! | `label:<text>` | the text of the associated `<label>` | `label:E-mail` |
//! | `css:<path>` | capture.js's short CSS path | `css:main>div.card>a` |
//!
//! Values are trimmed, inner whitespace runs collapse to one space, and values are cut to
//! [`MAX_VALUE_CHARS`] characters so a descriptor stays a short key.

use crate::event;

/// Longest value (in characters) kept in a descriptor.
pub const MAX_VALUE_CHARS: usize = 80;

/// The descriptor of a target (see the module docs for the order of preference).
pub fn descriptor(t: &event::Target) -> String {
    if let Some(v) = clean(t.testid.as_deref()) {
        return format!("testid:{v}");
    }
    if let Some(v) = clean(t.eid.as_deref()) {
        return format!("id:{v}");
    }
    if let (Some(role), Some(name)) = (clean(t.role.as_deref()), clean(t.name.as_deref())) {
        return format!("role:{role}[{name}]");
    }
    if let Some(v) = clean(t.label.as_deref()) {
        return format!("label:{v}");
    }
    let path = clean(Some(&t.path)).unwrap_or_else(|| {
        clean(Some(&t.tag))
            .map(|tag| tag.to_string())
            .unwrap_or_else(|| "?".into())
    });
    format!("css:{path}")
}

/// Trims, collapses whitespace and bounds the length; `None` for missing or blank values.
fn clean(v: Option<&str>) -> Option<String> {
    let v = v?;
    let mut out = String::new();
    for (i, word) in v.split_whitespace().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(word);
    }
    if out.is_empty() {
        return None;
    }
    if out.chars().count() > MAX_VALUE_CHARS {
        out = out.chars().take(MAX_VALUE_CHARS).collect();
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> event::Target {
        event::Target {
            tag: "button".into(),
            path: "main>form>button".into(),
            ..Default::default()
        }
    }

    #[test]
    fn preference_order() {
        let mut t = target();
        t.label = Some("Pay".into());
        assert_eq!(descriptor(&t), "label:Pay");
        t.role = Some("button".into());
        assert_eq!(
            descriptor(&t),
            "label:Pay",
            "a role without a name is not enough"
        );
        t.name = Some("  Pay   now ".into());
        assert_eq!(descriptor(&t), "role:button[Pay now]");
        t.eid = Some("pay".into());
        assert_eq!(descriptor(&t), "id:pay");
        t.testid = Some("pay-button".into());
        assert_eq!(descriptor(&t), "testid:pay-button");
    }

    #[test]
    fn falls_back_to_css_path_then_tag() {
        assert_eq!(descriptor(&target()), "css:main>form>button");
        let mut t = target();
        t.path = "  ".into();
        t.testid = Some(String::new());
        assert_eq!(descriptor(&t), "css:button");
        t.tag.clear();
        assert_eq!(descriptor(&t), "css:?");
    }

    #[test]
    fn long_values_are_cut() {
        let mut t = target();
        t.testid = Some("x".repeat(500));
        assert_eq!(descriptor(&t).len(), "testid:".len() + MAX_VALUE_CHARS);
    }
}
