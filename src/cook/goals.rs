//! Goals and outcomes: what counts as a session reaching what the site wants.
//!
//! A goal is written as a spec string, the same on the command line and in scenario files:
//!
//! | spec | reached when |
//! |---|---|
//! | `[NAME=]url:GLOB` | a page view or SPA navigation lands on a URL whose path, or whose route template, matches `GLOB` (`url:/order/*`, `url:/product/:id`) |
//! | `[NAME=]element:SELECTOR` | an element matching `SELECTOR` is in a snapshot, is added by a mutation, or comes to match through an attribute change |
//! | `[NAME=]request:METHOD GLOB` | a fetch/XHR with that method (`*` for any) to a path matching `GLOB` finishes with a 2xx status |
//!
//! `GLOB` is a path where `*` matches any run of characters, `/` included; a trailing slash in
//! the glob is ignored, as in route templates. `SELECTOR` is one compound CSS selector: an
//! optional tag (or `*`), then any number of `#id`, `.class`, `[attr]` and `[attr=value]`
//! (value bare or quoted). Combinators and pseudo-classes are rejected, because the node table
//! cook keeps has no layout and no tree order. Without `NAME=`, the goal is named by its spec.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::route::{route_template, url_path};
use crate::event::{self, Event};

/// A parsed goal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Goal {
    /// The name outcomes carry (`NAME`, or the whole spec when unnamed).
    pub name: String,
    /// The spec this goal was parsed from, for provenance.
    pub spec: String,
    pub kind: GoalKind,
}

/// What a goal waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum GoalKind {
    Url { glob: String },
    Element { selector: Selector },
    Request { method: String, glob: String },
}

/// Why a goal spec was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GoalError {
    #[error("empty goal spec")]
    Empty,
    #[error("goal `{spec}`: expected KIND:PATTERN with KIND one of url, element, request")]
    NoKind { spec: String },
    #[error("goal `{spec}`: unknown kind `{kind}` (expected url, element or request)")]
    UnknownKind { spec: String, kind: String },
    #[error("goal `{spec}`: name `{name}` must be 1-64 characters of [A-Za-z0-9_.-]")]
    BadName { spec: String, name: String },
    #[error("goal `{spec}`: the pattern is empty")]
    EmptyPattern { spec: String },
    #[error("goal `{spec}`: a URL glob must be a path starting with `/` or `*`")]
    NotAPath { spec: String },
    #[error("goal `{spec}`: expected `request:METHOD /path` (e.g. `request:POST /api/orders`)")]
    BadRequest { spec: String },
    #[error("goal `{spec}`: bad selector: {reason}")]
    BadSelector { spec: String, reason: String },
}

/// Parses `[NAME=]url:GLOB`, `[NAME=]element:SELECTOR` or `[NAME=]request:METHOD GLOB`.
pub fn parse_goal(spec: &str) -> Result<Goal, GoalError> {
    let spec = spec.trim();
    if spec.is_empty() {
        return Err(GoalError::Empty);
    }
    let owned = || spec.to_string();
    let colon = spec
        .find(':')
        .ok_or_else(|| GoalError::NoKind { spec: owned() })?;
    let (name, head) = match spec.find('=') {
        Some(eq) if eq < colon => (Some(&spec[..eq]), &spec[eq + 1..]),
        _ => (None, spec),
    };
    if let Some(n) = name {
        let ok = !n.is_empty()
            && n.len() <= 64
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !ok {
            return Err(GoalError::BadName {
                spec: owned(),
                name: n.to_string(),
            });
        }
    }
    let colon = head
        .find(':')
        .ok_or_else(|| GoalError::NoKind { spec: owned() })?;
    let kind = head[..colon].trim().to_ascii_lowercase();
    let pattern = head[colon + 1..].trim();
    if pattern.is_empty() {
        return Err(GoalError::EmptyPattern { spec: owned() });
    }
    let kind = match kind.as_str() {
        "url" => {
            if !(pattern.starts_with('/') || pattern.starts_with('*')) {
                return Err(GoalError::NotAPath { spec: owned() });
            }
            GoalKind::Url {
                glob: normalise_glob(pattern),
            }
        }
        "element" => GoalKind::Element {
            selector: Selector::parse(pattern).map_err(|reason| GoalError::BadSelector {
                spec: owned(),
                reason,
            })?,
        },
        "request" => {
            let mut parts = pattern.split_whitespace();
            let (Some(method), Some(glob), None) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(GoalError::BadRequest { spec: owned() });
            };
            let method_ok = method == "*" || method.bytes().all(|b| b.is_ascii_alphabetic());
            if !method_ok || !(glob.starts_with('/') || glob.starts_with('*')) {
                return Err(GoalError::BadRequest { spec: owned() });
            }
            GoalKind::Request {
                method: method.to_ascii_uppercase(),
                glob: normalise_glob(glob),
            }
        }
        _ => {
            return Err(GoalError::UnknownKind {
                spec: owned(),
                kind,
            })
        }
    };
    Ok(Goal {
        name: name.unwrap_or(spec).to_string(),
        spec: spec.to_string(),
        kind,
    })
}

fn normalise_glob(glob: &str) -> String {
    let trimmed = glob.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".into()
    } else {
        trimmed.to_string()
    }
}

/// Whether `text` matches `glob`, where `*` matches any run of characters (including none).
///
/// Greedy matching with one backtrack point, linear in practice and never exponential.
pub fn glob_match(glob: &str, text: &str) -> bool {
    let (g, t) = (glob.as_bytes(), text.as_bytes());
    let (mut gi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if gi < g.len() && g[gi] == b'*' {
            star = Some((gi, ti));
            gi += 1;
        } else if gi < g.len() && g[gi] == t[ti] {
            gi += 1;
            ti += 1;
        } else if let Some((sg, st)) = star {
            gi = sg + 1;
            ti = st + 1;
            star = Some((sg, st + 1));
        } else {
            return false;
        }
    }
    g[gi..].iter().all(|&b| b == b'*')
}

/// One compound CSS selector: `tag#id.class[attr][attr=value]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selector {
    /// Lower-case tag name, or `None` for any.
    pub tag: Option<String>,
    /// Attribute tests; `#x` is `id = x` and `.x` is a class test.
    pub tests: Vec<AttrTest>,
}

/// One attribute test of a [`Selector`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum AttrTest {
    /// `[name]`
    Has { name: String },
    /// `[name=value]` (and `#id`)
    Equals { name: String, value: String },
    /// `.class`: one of the whitespace-separated words of `class`.
    Class { value: String },
}

impl Selector {
    /// Parses one compound selector; the error says what is wrong and where.
    pub fn parse(s: &str) -> Result<Selector, String> {
        let chars: Vec<char> = s.chars().collect();
        let mut i = 0;
        let mut tag = None;
        let mut tests = Vec::new();
        let ident = |i: &mut usize| -> String {
            let start = *i;
            while *i < chars.len()
                && (chars[*i].is_alphanumeric() || chars[*i] == '-' || chars[*i] == '_')
            {
                *i += 1;
            }
            chars[start..*i].iter().collect()
        };
        if i < chars.len() && chars[i] == '*' {
            i += 1;
        } else {
            let t = ident(&mut i);
            if !t.is_empty() {
                tag = Some(t.to_ascii_lowercase());
            }
        }
        while i < chars.len() {
            let c = chars[i];
            match c {
                '#' | '.' => {
                    i += 1;
                    let v = ident(&mut i);
                    if v.is_empty() {
                        return Err(format!("expected a name after `{c}` at character {i}"));
                    }
                    tests.push(if c == '#' {
                        AttrTest::Equals {
                            name: "id".into(),
                            value: v,
                        }
                    } else {
                        AttrTest::Class { value: v }
                    });
                }
                '[' => {
                    let close = chars[i..]
                        .iter()
                        .position(|&c| c == ']')
                        .map(|p| p + i)
                        .ok_or_else(|| format!("unclosed `[` at character {}", i + 1))?;
                    let inner: String = chars[i + 1..close].iter().collect();
                    tests.push(parse_attr(&inner)?);
                    i = close + 1;
                }
                ':' => return Err("pseudo-classes are not supported".into()),
                c if c.is_whitespace() || matches!(c, '>' | '+' | '~' | ',') => {
                    return Err(
                        "combinators and selector lists are not supported; use one compound selector such as `button.primary[data-testid=pay]`"
                            .into(),
                    )
                }
                c => return Err(format!("unexpected `{c}` at character {}", i + 1)),
            }
        }
        if tag.is_none() && tests.is_empty() && !s.starts_with('*') {
            return Err("empty selector".into());
        }
        Ok(Selector { tag, tests })
    }

    /// Whether an element with this tag and these attributes matches.
    pub fn matches(&self, tag: &str, attrs: &BTreeMap<String, String>) -> bool {
        if let Some(want) = &self.tag {
            if !want.eq_ignore_ascii_case(tag) {
                return false;
            }
        }
        self.tests.iter().all(|t| match t {
            AttrTest::Has { name } => attrs.contains_key(name),
            AttrTest::Equals { name, value } => attrs.get(name) == Some(value),
            AttrTest::Class { value } => attrs
                .get("class")
                .is_some_and(|c| c.split_whitespace().any(|w| w == value)),
        })
    }
}

fn parse_attr(inner: &str) -> Result<AttrTest, String> {
    let (name, value) = match inner.split_once('=') {
        Some((n, v)) => (n.trim(), Some(v.trim())),
        None => (inner.trim(), None),
    };
    let name_ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ':'));
    if !name_ok {
        return Err(format!("bad attribute name `{name}` in `[{inner}]`"));
    }
    let name = name.to_ascii_lowercase();
    let Some(value) = value else {
        return Ok(AttrTest::Has { name });
    };
    let value = match value.chars().next() {
        Some(q @ ('"' | '\'')) => {
            if value.len() < 2 || !value.ends_with(q) {
                return Err(format!("unterminated quote in `[{inner}]`"));
            }
            &value[1..value.len() - 1]
        }
        _ => value,
    };
    Ok(AttrTest::Equals {
        name,
        value: value.to_string(),
    })
}

/// Follows one session's events and records when each goal is first reached.
///
/// For element goals it keeps a node table `id → (tag, attributes)` per document, fed by the
/// snapshot, added subtrees and attribute changes, and cleared on every new page view.
pub(crate) struct GoalTracker<'g, 'e> {
    goals: &'g [Goal],
    reached: Vec<Option<i64>>,
    nodes: NodeTable<'e>,
    track_nodes: bool,
}

/// The elements of the current document, borrowed from the events.
///
/// Node ids are small integers counted per page view by capture.js, so ids below
/// [`NodeTable::DENSE_LIMIT`] live in a vector; anything larger (hostile or odd input) goes to
/// a map. Attributes are copied only for elements whose attributes change.
#[derive(Default)]
struct NodeTable<'e> {
    dense: Vec<Option<&'e event::Node>>,
    sparse: HashMap<u64, &'e event::Node>,
    /// Current attributes of elements edited since they were added.
    edited: HashMap<u64, BTreeMap<String, String>>,
}

impl<'e> NodeTable<'e> {
    const DENSE_LIMIT: u64 = 1 << 20;

    fn clear(&mut self) {
        self.dense.clear();
        self.sparse.clear();
        self.edited.clear();
    }

    fn insert(&mut self, node: &'e event::Node) {
        let id = node.id;
        if id < Self::DENSE_LIMIT {
            let i = id as usize;
            if i >= self.dense.len() {
                self.dense.resize(i + 1, None);
            }
            self.dense[i] = Some(node);
        } else {
            self.sparse.insert(id, node);
        }
        if !self.edited.is_empty() {
            self.edited.remove(&id);
        }
    }

    fn remove(&mut self, id: u64) {
        if id < Self::DENSE_LIMIT {
            if let Some(slot) = self.dense.get_mut(id as usize) {
                *slot = None;
            }
        } else {
            self.sparse.remove(&id);
        }
        self.edited.remove(&id);
    }

    fn get(&self, id: u64) -> Option<&'e event::Node> {
        if id < Self::DENSE_LIMIT {
            self.dense.get(id as usize).copied().flatten()
        } else {
            self.sparse.get(&id).copied()
        }
    }
}

impl<'g, 'e> GoalTracker<'g, 'e> {
    pub(crate) fn new(goals: &'g [Goal]) -> Self {
        let track_nodes = goals
            .iter()
            .any(|g| matches!(g.kind, GoalKind::Element { .. }));
        GoalTracker {
            goals,
            reached: vec![None; goals.len()],
            nodes: NodeTable::default(),
            track_nodes,
        }
    }

    /// Feeds one event (epoch-ms timestamps).
    pub(crate) fn on_event(&mut self, ev: &'e Event) {
        if self.reached.iter().all(Option::is_some) {
            return;
        }
        if self.track_nodes && !self.elements_pending() {
            self.track_nodes = false;
            self.nodes.clear();
        }
        match ev {
            Event::Meta(m) => {
                self.nodes.clear();
                self.check_url(&m.url, m.t);
            }
            Event::Nav(n) if n.nav != event::NavKind::Leave => self.check_url(&n.url, n.t),
            Event::Net(n) if (200..300).contains(&n.status) => self.check_request(n),
            Event::Snap(s) if self.track_nodes => {
                self.nodes.clear();
                self.add_tree(&s.node, s.t);
            }
            Event::Mut(m) if self.track_nodes => {
                for r in &m.rems {
                    self.nodes.remove(r.id);
                }
                for a in &m.adds {
                    self.add_tree(&a.node, m.t);
                }
                for ch in &m.attrs {
                    let Some(node) = self.nodes.get(ch.id) else {
                        continue;
                    };
                    let attrs = self
                        .nodes
                        .edited
                        .entry(ch.id)
                        .or_insert_with(|| node.a.clone());
                    for (k, v) in &ch.a {
                        match v {
                            Some(v) => attrs.insert(k.clone(), v.clone()),
                            None => attrs.remove(k),
                        };
                    }
                    let tag = node.tag.as_deref().unwrap_or("");
                    check_element(self.goals, &mut self.reached, tag, attrs, m.t);
                }
            }
            _ => {}
        }
    }

    /// Whether some element goal is still unreached (else the node table is not kept).
    fn elements_pending(&self) -> bool {
        self.goals
            .iter()
            .zip(&self.reached)
            .any(|(g, r)| r.is_none() && matches!(g.kind, GoalKind::Element { .. }))
    }

    /// `(goal index, epoch ms)` of every goal reached, in goal order.
    pub(crate) fn reached(&self) -> impl Iterator<Item = (usize, i64)> + '_ {
        self.reached
            .iter()
            .enumerate()
            .filter_map(|(i, t)| t.map(|t| (i, t)))
    }

    fn check_url(&mut self, url: &str, t: i64) {
        let path = url_path(url);
        let route = route_template(url);
        for (goal, reached) in self.goals.iter().zip(&mut self.reached) {
            if let GoalKind::Url { glob } = &goal.kind {
                if reached.is_none() && (glob_match(glob, &path) || glob_match(glob, &route)) {
                    *reached = Some(t);
                }
            }
        }
    }

    fn check_request(&mut self, n: &event::Net) {
        let path = url_path(&n.url);
        for (goal, reached) in self.goals.iter().zip(&mut self.reached) {
            if let GoalKind::Request { method, glob } = &goal.kind {
                let method_ok = method == "*" || method.eq_ignore_ascii_case(&n.method);
                if reached.is_none() && method_ok && glob_match(glob, &path) {
                    *reached = Some(n.t);
                }
            }
        }
    }

    /// Registers a subtree (iteratively: hostile trees may be deep) and checks each element.
    fn add_tree(&mut self, root: &'e event::Node, t: i64) {
        let mut stack = vec![root];
        while let Some(node) = stack.pop() {
            if node.nt == event::node_type::ELEMENT {
                let tag = node.tag.as_deref().unwrap_or("");
                check_element(self.goals, &mut self.reached, tag, &node.a, t);
                self.nodes.insert(node);
            }
            stack.extend(node.c.iter());
            if let Some(sh) = &node.shadow {
                stack.push(sh);
            }
        }
    }
}

/// Marks the element goals an element with this tag and these attributes reaches.
fn check_element(
    goals: &[Goal],
    reached: &mut [Option<i64>],
    tag: &str,
    attrs: &BTreeMap<String, String>,
    t: i64,
) {
    for (goal, reached) in goals.iter().zip(reached) {
        if let GoalKind::Element { selector } = &goal.kind {
            if reached.is_none() && selector.matches(tag, attrs) {
                *reached = Some(t);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_kinds() {
        let g = parse_goal("purchase=element:[data-testid=order-confirmation]").unwrap();
        assert_eq!(g.name, "purchase");
        assert_eq!(
            g.kind,
            GoalKind::Element {
                selector: Selector {
                    tag: None,
                    tests: vec![AttrTest::Equals {
                        name: "data-testid".into(),
                        value: "order-confirmation".into()
                    }]
                }
            }
        );
        let g = parse_goal("url:/order/*/").unwrap();
        assert_eq!(g.name, "url:/order/*/");
        assert_eq!(
            g.kind,
            GoalKind::Url {
                glob: "/order/*".into()
            }
        );
        let g = parse_goal("paid=request:post /api/pay*").unwrap();
        assert_eq!(
            g.kind,
            GoalKind::Request {
                method: "POST".into(),
                glob: "/api/pay*".into()
            }
        );
    }

    #[test]
    fn rejects_bad_specs_with_clear_errors() {
        let bad = [
            ("", "empty goal spec"),
            ("nothing", "expected KIND:PATTERN"),
            ("click:/x", "unknown kind `click`"),
            ("url:", "the pattern is empty"),
            ("url:order", "must be a path"),
            ("bad name=url:/x", "name `bad name`"),
            ("=url:/x", "name ``"),
            ("request:/api", "expected `request:METHOD /path`"),
            ("request:POST api", "expected `request:METHOD /path`"),
            ("request:PO5T /api", "expected `request:METHOD /path`"),
            ("element:div > span", "combinators"),
            ("element:a:hover", "pseudo-classes"),
            ("element:[data-x", "unclosed `[`"),
            ("element:[=x]", "bad attribute name"),
            ("element:[a=\"x]", "unterminated quote"),
            ("element:#", "expected a name after `#`"),
            ("element:div$", "unexpected `$`"),
        ];
        for (spec, want) in bad {
            let err = parse_goal(spec).expect_err(spec).to_string();
            assert!(err.contains(want), "{spec}: {err}");
        }
    }

    #[test]
    fn selectors_match_compound_tests() {
        let s = Selector::parse("button.primary.big#pay[type=submit][data-x]").unwrap();
        let mut a = BTreeMap::new();
        a.insert("class".to_string(), "big primary".to_string());
        a.insert("id".to_string(), "pay".to_string());
        a.insert("type".to_string(), "submit".to_string());
        assert!(!s.matches("button", &a), "data-x is missing");
        a.insert("data-x".to_string(), String::new());
        assert!(s.matches("button", &a));
        assert!(!s.matches("a", &a));
        let q = Selector::parse("[data-testid='order confirmation']").unwrap();
        let mut b = BTreeMap::new();
        b.insert("data-testid".to_string(), "order confirmation".to_string());
        assert!(q.matches("div", &b));
        assert!(Selector::parse("*").unwrap().matches("p", &BTreeMap::new()));
    }

    #[test]
    fn globs() {
        assert!(glob_match("/order/*", "/order/42/confirmation"));
        assert!(glob_match("*", ""));
        assert!(glob_match("/a*b*c", "/axxbyyc"));
        assert!(!glob_match("/a*b*c", "/axxbyy"));
        assert!(glob_match("/checkout", "/checkout"));
        assert!(!glob_match("/checkout", "/checkout/done"));
        assert!(!glob_match("/x", "/y"));
        // Pathological input stays fast.
        let long = "a".repeat(5000);
        assert!(!glob_match("*a*a*a*a*a*b", &long));
    }

    fn node(id: u64, tag: &str, attrs: &[(&str, &str)], c: Vec<event::Node>) -> event::Node {
        event::Node {
            id,
            nt: event::node_type::ELEMENT,
            tag: Some(tag.into()),
            a: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            x: None,
            c,
            svg: false,
            excl: None,
            shadow: None,
            frame: None,
            tpl: None,
        }
    }

    #[test]
    fn element_goal_through_snapshot_add_and_attribute_change() {
        let goals = vec![
            parse_goal("snap=element:main").unwrap(),
            parse_goal("added=element:[data-testid=toast]").unwrap(),
            parse_goal("attr=element:div.done").unwrap(),
        ];
        let mut a = BTreeMap::new();
        a.insert("class".to_string(), Some("x done".to_string()));
        let events = [
            Event::Snap(event::Snap {
                t: 10,
                node: node(1, "html", &[], vec![node(2, "main", &[], vec![])]),
                sx: 0.0,
                sy: 0.0,
            }),
            Event::Mut(event::Mutation {
                t: 20,
                adds: vec![event::Add {
                    p: 2,
                    n: 0,
                    node: node(3, "div", &[("data-testid", "toast")], vec![]),
                }],
                rems: vec![],
                attrs: vec![],
                roots: vec![],
                texts: vec![],
            }),
            Event::Mut(event::Mutation {
                t: 30,
                adds: vec![],
                rems: vec![],
                attrs: vec![event::AttrChange { id: 3, a }],
                roots: vec![],
                texts: vec![],
            }),
        ];
        let mut tr = GoalTracker::new(&goals);
        for e in &events {
            tr.on_event(e);
        }
        assert_eq!(
            tr.reached().collect::<Vec<_>>(),
            vec![(0, 10), (1, 20), (2, 30)]
        );
    }

    #[test]
    fn huge_ids_and_removed_nodes() {
        let goals = vec![parse_goal("element:div.done").unwrap()];
        let change = |t, id| {
            let mut a = BTreeMap::new();
            a.insert("class".to_string(), Some("done".to_string()));
            Event::Mut(event::Mutation {
                t,
                adds: vec![],
                rems: vec![],
                attrs: vec![event::AttrChange { id, a }],
                roots: vec![],
                texts: vec![],
            })
        };
        let big = 1u64 << 40;
        let events = [
            Event::Snap(event::Snap {
                t: 1,
                node: node(
                    1,
                    "html",
                    &[],
                    vec![node(5, "div", &[], vec![]), node(big, "div", &[], vec![])],
                ),
                sx: 0.0,
                sy: 0.0,
            }),
            Event::Mut(event::Mutation {
                t: 2,
                adds: vec![],
                rems: vec![event::Remove { p: 1, id: 5 }],
                attrs: vec![],
                roots: vec![],
                texts: vec![],
            }),
            change(3, 5),
            change(4, big),
        ];
        let mut tr = GoalTracker::new(&goals);
        for e in &events {
            tr.on_event(e);
        }
        assert_eq!(tr.reached().collect::<Vec<_>>(), vec![(0, 4)]);
    }

    #[test]
    fn request_goal_needs_2xx_and_method() {
        let goals = vec![parse_goal("request:POST /api/pay").unwrap()];
        let net = |t, method: &str, status| {
            Event::Net(event::Net {
                t,
                via: "fetch".into(),
                method: method.into(),
                url: "https://shop.example/api/pay/".into(),
                status,
                dur: 10,
                hdr: BTreeMap::new(),
            })
        };
        let events = [net(1, "POST", 500), net(2, "GET", 200), net(3, "post", 201)];
        let mut tr = GoalTracker::new(&goals);
        tr.on_event(&events[0]);
        tr.on_event(&events[1]);
        assert_eq!(tr.reached().count(), 0);
        tr.on_event(&events[2]);
        assert_eq!(tr.reached().collect::<Vec<_>>(), vec![(0, 3)]);
    }
}
