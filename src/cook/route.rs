//! Route templates: a URL becomes the shape of the page it names, `/product/42` → `/product/:id`.
//!
//! A behaviour model learns "what people do on a product page", not "what people do on
//! product 42", so every URL is reduced to a template before it names a state.
//!
//! Rules, applied in this order:
//!
//! 1. **Origin.** Everything up to the first `/` after `scheme://` is dropped (`https://shop.example/a`
//!    → `/a`; a bare origin becomes `/`). A string without `://` is taken as a path; a missing
//!    leading `/` is added.
//! 2. **Query and fragment** (`?…`, `#…`) are dropped, should capture.js ever send them.
//! 3. **Slashes.** Empty segments are dropped, so `//` collapses and a trailing slash goes
//!    (`/cart/` → `/cart`); the root stays `/`.
//! 4. **Identifiers.** A segment becomes `:id` when it is
//!    * all digits (`42`);
//!    * a UUID (`8-4-4-4-12` hex digits);
//!    * hexadecimal, at least [`MIN_HEX_LEN`] characters, with at least one digit
//!      (`5f2b9c0e`, object ids, hashes; `deadbeef` has no digit and stays a word);
//!    * a token of at least [`MIN_TOKEN_LEN`] characters of `[A-Za-z0-9_=-]` with at least one
//!      digit (base64url tokens, slugs with an id in them such as `blue-shirt-123456`).
//!
//! Segments that already start with `:` (an existing placeholder) are kept, so templating is
//! idempotent: `route_template(route_template(u)) == route_template(u)`.

/// Placeholder that replaces identifier-like segments.
pub const ID_PLACEHOLDER: &str = ":id";

/// Shortest all-hex segment treated as an identifier (must also contain a digit).
pub const MIN_HEX_LEN: usize = 8;

/// Shortest base64-ish token treated as an identifier (must also contain a digit).
pub const MIN_TOKEN_LEN: usize = 16;

/// The path of a URL without origin, query or fragment, with slashes normalised
/// (rules 1–3 of the module docs), but identifiers kept.
pub fn url_path(url: &str) -> String {
    let rest = match url.find("://") {
        Some(i) if !url.starts_with('/') => {
            let after = &url[i + 3..];
            match after.find('/') {
                Some(j) => &after[j..],
                None => "",
            }
        }
        _ => url,
    };
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let mut out = String::with_capacity(rest.len() + 1);
    for seg in rest.split('/').filter(|s| !s.is_empty()) {
        out.push('/');
        out.push_str(seg);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// The route template of a URL or path (all rules of the module docs).
pub fn route_template(url: &str) -> String {
    let path = url_path(url);
    if path == "/" {
        return path;
    }
    let mut out = String::with_capacity(path.len());
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        out.push('/');
        if is_identifier(seg) {
            out.push_str(ID_PLACEHOLDER);
        } else {
            out.push_str(seg);
        }
    }
    out
}

/// Whether one path segment looks like an identifier (rule 4).
pub fn is_identifier(seg: &str) -> bool {
    if seg.is_empty() || seg.starts_with(':') {
        return false;
    }
    let has_digit = seg.bytes().any(|b| b.is_ascii_digit());
    if !has_digit {
        return false;
    }
    if seg.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    if is_uuid(seg) {
        return true;
    }
    if seg.len() >= MIN_HEX_LEN && seg.bytes().all(|b| b.is_ascii_hexdigit()) {
        return true;
    }
    seg.len() >= MIN_TOKEN_LEN
        && seg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'='))
}

fn is_uuid(seg: &str) -> bool {
    let groups: Vec<&str> = seg.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn templates_identifiers() {
        let cases = [
            ("https://shop.example/product/42", "/product/:id"),
            ("https://shop.example", "/"),
            ("https://shop.example/", "/"),
            ("/cart/", "/cart"),
            ("//cart//items/", "/cart/items"),
            ("cart", "/cart"),
            (
                "/order/3f2504e0-4f89-11d3-9a0c-0305e82c3301/confirmation",
                "/order/:id/confirmation",
            ),
            ("/u/5f2b9c0e7a", "/u/:id"),
            ("/u/deadbeef", "/u/deadbeef"),
            ("/t/aGVsbG8gd29ybGQ1Mj", "/t/:id"),
            ("/p/blue-shirt-123456", "/p/:id"),
            ("/p/shirt-42", "/p/shirt-42"),
            ("/api/v2/items", "/api/v2/items"),
            ("/product/:id", "/product/:id"),
            ("/search?q=secret#top", "/search"),
            ("http://localhost:8080/a/1/b/2", "/a/:id/b/:id"),
        ];
        for (url, want) in cases {
            assert_eq!(route_template(url), want, "{url}");
        }
    }

    #[test]
    fn path_keeps_identifiers() {
        assert_eq!(url_path("https://x.example/product/42/"), "/product/42");
        assert_eq!(url_path(""), "/");
    }

    #[test]
    fn short_hex_and_words_stay() {
        assert!(!is_identifier("abc1234")); // 7 hex chars
        assert!(is_identifier("abc12345")); // 8
        assert!(!is_identifier("checkout"));
        assert!(!is_identifier(":id"));
        assert!(!is_identifier("aaaaaaaaaaaaaaaaaaaa")); // no digit
    }

    proptest! {
        #[test]
        fn templating_is_idempotent(url in ".{0,80}") {
            let once = route_template(&url);
            prop_assert_eq!(route_template(&once), once.clone());
            prop_assert!(once.starts_with('/'));
        }

        #[test]
        fn templating_url_like_strings_is_idempotent(
            segs in proptest::collection::vec("[a-zA-Z0-9_=:.-]{0,20}", 0..6),
            trailing in any::<bool>(),
        ) {
            let mut url = format!("https://h.example/{}", segs.join("/"));
            if trailing { url.push('/'); }
            let once = route_template(&url);
            prop_assert_eq!(route_template(&once), once);
        }
    }
}
