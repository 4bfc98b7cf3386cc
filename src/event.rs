//! The capture wire format: the Rust types for what `capture.js` sends.
//!
//! This module is the single source of truth for the format. `capture.js` emits it, the
//! collector validates and stores it, `cook` reads it. It knows serde and nothing else.
//!
//! One POST body (or one NDJSON line of an export) is a [`Batch`]:
//!
//! ```json
//! {"v":1,"sid":"s-…","pvid":"p-…","seq":7,"sent":1733300000123,
//!  "events":[{"k":"click","t":1733300000100,"id":42,"x":10,"y":20,"tgt":{…}}]}
//! ```
//!
//! * `sid` names the session (one tab, kept across full navigations in `sessionStorage`);
//!   `pvid` names the page view (one document); `seq` counts batches within the session
//!   from 0, across page views. `(sid, seq)` is the identity the store deduplicates on.
//! * Every event has a kind `k` and a wall-clock timestamp `t` in epoch milliseconds.
//! * Node ids are integers assigned by `capture.js` per page view; `0` means "none".
//!
//! Privacy lives in `capture.js`: by the time an event exists, masked text is already
//! replaced by `*` of the same length, and no input value, query string or header is present.
//! Readers must still treat every string here as untrusted.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Version of the wire format. `capture.js` sends it as `v`; readers reject other versions.
pub const SCHEMA_VERSION: u32 = 1;

/// Upper bound on events in one batch; larger batches are rejected as hostile.
pub const MAX_EVENTS_PER_BATCH: usize = 50_000;

/// Upper bound on the length of an id string (`sid`, `pvid`).
pub const MAX_ID_LEN: usize = 128;

/// One unit of transport: the events of one page view, in order, numbered within the session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// Schema version, always [`SCHEMA_VERSION`] for this build.
    pub v: u32,
    /// Session id.
    pub sid: String,
    /// Page-view id.
    pub pvid: String,
    /// Sequence number of this batch within the session, from 0.
    pub seq: u64,
    /// When the batch left the page (epoch ms), if the page said so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent: Option<i64>,
    /// The events, in the order they happened.
    pub events: Vec<Event>,
}

/// Why a batch is not acceptable, beyond what serde already checks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("unsupported schema version {found} (this build reads version {SCHEMA_VERSION})")]
    Version { found: u32 },
    #[error("field `{field}` must be 1..={MAX_ID_LEN} characters of [A-Za-z0-9_-]")]
    BadId { field: &'static str },
    #[error("batch has {0} events; the limit is {MAX_EVENTS_PER_BATCH}")]
    TooManyEvents(usize),
    #[error("batch has no events")]
    Empty,
}

impl Batch {
    /// Checks what the type system cannot: version, id shape and size bounds.
    pub fn validate(&self) -> Result<(), BatchError> {
        if self.v != SCHEMA_VERSION {
            return Err(BatchError::Version { found: self.v });
        }
        if !valid_id(&self.sid) {
            return Err(BatchError::BadId { field: "sid" });
        }
        if !valid_id(&self.pvid) {
            return Err(BatchError::BadId { field: "pvid" });
        }
        if self.events.is_empty() {
            return Err(BatchError::Empty);
        }
        if self.events.len() > MAX_EVENTS_PER_BATCH {
            return Err(BatchError::TooManyEvents(self.events.len()));
        }
        Ok(())
    }

    /// Earliest event timestamp in the batch.
    pub fn first_t(&self) -> Option<i64> {
        self.events.iter().map(Event::t).min()
    }

    /// Latest event timestamp in the batch.
    pub fn last_t(&self) -> Option<i64> {
        self.events.iter().map(Event::t).max()
    }
}

/// Deepest JSON nesting a batch may have. A DOM node nests two levels (its object and its
/// `c` array), so this admits trees about 2 000 elements deep; serde_json's own limit (128)
/// would refuse any page deeper than about 60.
pub const MAX_JSON_DEPTH: usize = 4096;

/// Why JSON text could not be read.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    #[error("JSON is nested deeper than {MAX_JSON_DEPTH} levels")]
    TooDeep,
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// Nesting depth of JSON text: brackets outside strings. Linear, no allocation. Strings,
/// most of any batch, are skipped with `memchr` to their closing quote.
pub fn json_depth(text: &str) -> usize {
    let bytes = text.as_bytes();
    let (mut i, mut depth, mut max) = (0usize, 0usize, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                // To the closing quote, over escapes (whatever follows a backslash).
                loop {
                    let Some(j) = memchr::memchr2(b'"', b'\\', &bytes[i..]) else {
                        return max;
                    };
                    if bytes[i + j] == b'"' {
                        i += j + 1;
                        break;
                    }
                    i = (i + j + 2).min(bytes.len());
                }
                continue;
            }
            b'{' | b'[' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    max
}

/// Stack for parsing or writing JSON nested `depth` levels: serde recurses a few frames per
/// level, and a debug build's frames are large.
fn stack_for(depth: usize) -> usize {
    (depth + 64) * 16 * 1024
}

/// Parses wire-format JSON (a [`Batch`], or any part of one) that may nest as deep as
/// [`MAX_JSON_DEPTH`]. Deeper text is refused before parsing. Deep text is parsed on a stack
/// of its own, sized for its depth, so it cannot overflow the calling thread's stack.
pub fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, JsonError> {
    let depth = json_depth(text);
    if depth > MAX_JSON_DEPTH {
        return Err(JsonError::TooDeep);
    }
    let parse = || -> Result<T, JsonError> {
        let mut de = serde_json::Deserializer::from_str(text);
        de.disable_recursion_limit();
        let value = T::deserialize(&mut de)?;
        de.end()?;
        Ok(value)
    };
    if depth <= INLINE_DEPTH {
        parse()
    } else {
        stacker::grow(stack_for(depth), parse)
    }
}

/// Deepest nesting parsed or written on the caller's own stack.
const INLINE_DEPTH: usize = 64;

/// Serialises wire-format values as deep as [`from_json`] accepts, on a stack of its own.
pub fn to_json<T: Serialize>(value: &T) -> Result<String, serde_json::Error> {
    stacker::grow(stack_for(MAX_JSON_DEPTH), || serde_json::to_string(value))
}

/// Serialises a batch's events, as the stores keep them. Unlike [`to_json`] it first
/// measures how deep the events nest ([`events_depth`]) and maps a stack of its own only
/// for the rare deep ones: mapping and unmapping a stack costs more than encoding a
/// typical batch, and the unmapping interrupts every core.
pub fn events_to_json(events: &[Event]) -> Result<String, serde_json::Error> {
    let depth = events_depth(events);
    if depth <= INLINE_DEPTH {
        serde_json::to_string(events)
    } else {
        stacker::grow(stack_for(depth), || serde_json::to_string(events))
    }
}

/// An upper bound on the JSON nesting of `events` written as an array, found without
/// recursion: two levels per level of a node tree (its object and its `c` array), the
/// depth of a custom event's `data`, and a few levels of event structure around them.
pub fn events_depth(events: &[Event]) -> usize {
    let mut deepest = 0;
    for event in events {
        let inner = match event {
            Event::Snap(s) => 2 * tree_levels(&s.node),
            Event::Mut(m) => {
                let adds = m.adds.iter().map(|a| tree_levels(&a.node));
                let roots = m.roots.iter().map(|r| tree_levels(&r.node));
                2 * adds.chain(roots).max().unwrap_or(0)
            }
            Event::Custom(c) => value_depth(&c.data),
            _ => 0,
        };
        deepest = deepest.max(inner);
    }
    // The events array, an event object, a mutation's list and entry, a node's `a` map.
    deepest + 8
}

/// Levels of a node tree: 1 for a lone node. Iterative, so any depth is safe.
fn tree_levels(root: &Node) -> usize {
    let mut deepest = 0;
    let mut todo = vec![(root, 1usize)];
    while let Some((n, level)) = todo.pop() {
        deepest = deepest.max(level);
        let below = [&n.shadow, &n.tpl, &n.frame].into_iter().flatten();
        todo.extend(below.map(|r| (&**r, level + 1)));
        todo.extend(n.c.iter().map(|c| (c, level + 1)));
    }
    deepest
}

/// JSON nesting of a value: 0 for a scalar, 1 for a flat array or object. Iterative.
fn value_depth(root: &serde_json::Value) -> usize {
    use serde_json::Value;
    let mut deepest = 0;
    let mut todo = vec![(root, 0usize)];
    while let Some((v, above)) = todo.pop() {
        match v {
            Value::Array(items) => {
                deepest = deepest.max(above + 1);
                todo.extend(items.iter().map(|i| (i, above + 1)));
            }
            Value::Object(fields) => {
                deepest = deepest.max(above + 1);
                todo.extend(fields.values().map(|i| (i, above + 1)));
            }
            _ => {}
        }
    }
    deepest
}

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ID_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// One thing that happened on the page.
///
/// On the wire an event is one object whose `k` names its kind. Serde's own reading of such
/// internally tagged enums buffers every object whole, trees included, before it reads it a
/// second time; [`Deserialize`] here reads the kind first when `k` comes first, as
/// `capture.js` and every writer of this format put it, and buffers only otherwise.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "k", rename_all = "lowercase")]
pub enum Event {
    /// Start of a page view: where, on what device, and how we got here.
    Meta(Meta),
    /// Full DOM snapshot of the document.
    Snap(Snap),
    /// A batch of DOM mutations.
    Mut(Mutation),
    /// A pointer click (mouse or touch).
    Click(Click),
    /// A settled edit of one form field, summarised (never the value).
    Input(Input),
    /// A form submission.
    Submit(Submit),
    /// A scroll of the document (`id` 0) or of an element.
    Scroll(Scroll),
    /// A navigation inside the document (SPA) or the start of one.
    Nav(Nav),
    /// The page was hidden or shown.
    Vis(Vis),
    /// The viewport changed size.
    Resize(Resize),
    /// Throttled pointer positions.
    Move(Move),
    /// A console error, an uncaught exception or an unhandled rejection.
    Err(JsError),
    /// A finished fetch/XHR request: metadata only.
    Net(Net),
    /// A call of the page API `understudy(name, …)`, e.g. `identify`.
    Custom(Custom),
}

/// The kinds of [`Event`], as `k` names them.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Meta,
    Snap,
    Mut,
    Click,
    Input,
    Submit,
    Scroll,
    Nav,
    Vis,
    Resize,
    Move,
    Err,
    Net,
    Custom,
}

/// Every `k`, in [`Kind`]'s order.
const KINDS: &[&str] = &[
    "meta", "snap", "mut", "click", "input", "submit", "scroll", "nav", "vis", "resize", "move",
    "err", "net", "custom",
];

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KindVisitor;
        impl serde::de::Visitor<'_> for KindVisitor {
            type Value = Kind;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an event kind")
            }
            fn visit_str<E: serde::de::Error>(self, k: &str) -> Result<Kind, E> {
                Ok(match k {
                    "meta" => Kind::Meta,
                    "snap" => Kind::Snap,
                    "mut" => Kind::Mut,
                    "click" => Kind::Click,
                    "input" => Kind::Input,
                    "submit" => Kind::Submit,
                    "scroll" => Kind::Scroll,
                    "nav" => Kind::Nav,
                    "vis" => Kind::Vis,
                    "resize" => Kind::Resize,
                    "move" => Kind::Move,
                    "err" => Kind::Err,
                    "net" => Kind::Net,
                    "custom" => Kind::Custom,
                    other => return Err(E::unknown_variant(other, KINDS)),
                })
            }
        }
        d.deserialize_str(KindVisitor)
    }
}

impl Kind {
    /// Reads the rest of an event of this kind (every field but `k`) from `d`.
    fn read<'de, D: serde::Deserializer<'de>>(self, d: D) -> Result<Event, D::Error> {
        Ok(match self {
            Kind::Meta => Event::Meta(Meta::deserialize(d)?),
            Kind::Snap => Event::Snap(Snap::deserialize(d)?),
            Kind::Mut => Event::Mut(Mutation::deserialize(d)?),
            Kind::Click => Event::Click(Click::deserialize(d)?),
            Kind::Input => Event::Input(Input::deserialize(d)?),
            Kind::Submit => Event::Submit(Submit::deserialize(d)?),
            Kind::Scroll => Event::Scroll(Scroll::deserialize(d)?),
            Kind::Nav => Event::Nav(Nav::deserialize(d)?),
            Kind::Vis => Event::Vis(Vis::deserialize(d)?),
            Kind::Resize => Event::Resize(Resize::deserialize(d)?),
            Kind::Move => Event::Move(Move::deserialize(d)?),
            Kind::Err => Event::Err(JsError::deserialize(d)?),
            Kind::Net => Event::Net(Net::deserialize(d)?),
            Kind::Custom => Event::Custom(Custom::deserialize(d)?),
        })
    }
}

/// The first key of an event object: `k`, or another one (then the object is buffered).
enum FirstKey {
    Kind,
    Other(String),
}

impl<'de> Deserialize<'de> for FirstKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl serde::de::Visitor<'_> for KeyVisitor {
            type Value = FirstKey;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<FirstKey, E> {
                Ok(if key == "k" {
                    FirstKey::Kind
                } else {
                    FirstKey::Other(key.to_owned())
                })
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct EventVisitor;
        impl<'de> serde::de::Visitor<'de> for EventVisitor {
            type Value = Event;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an event: an object with a kind `k`")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Event, A::Error> {
                use serde::de::Error;
                match map.next_key::<FirstKey>()? {
                    None => Err(A::Error::missing_field("k")),
                    Some(FirstKey::Kind) => {
                        let kind: Kind = map.next_value()?;
                        kind.read(serde::de::value::MapAccessDeserializer::new(map))
                    }
                    Some(FirstKey::Other(first)) => {
                        // `k` comes later: keep the object, then read it as its kind says.
                        let mut object = serde_json::Map::new();
                        object.insert(first, map.next_value()?);
                        while let Some(key) = map.next_key::<String>()? {
                            if object.contains_key(&key) {
                                return Err(A::Error::custom(format_args!(
                                    "duplicate field `{key}`"
                                )));
                            }
                            let value = map.next_value()?;
                            object.insert(key, value);
                        }
                        let kind = object
                            .remove("k")
                            .ok_or_else(|| A::Error::missing_field("k"))?;
                        let kind = Kind::deserialize(kind).map_err(A::Error::custom)?;
                        kind.read(serde_json::Value::Object(object))
                            .map_err(A::Error::custom)
                    }
                }
            }
        }
        d.deserialize_map(EventVisitor)
    }
}

impl Event {
    /// The event's timestamp, epoch milliseconds.
    pub fn t(&self) -> i64 {
        match self {
            Event::Meta(e) => e.t,
            Event::Snap(e) => e.t,
            Event::Mut(e) => e.t,
            Event::Click(e) => e.t,
            Event::Input(e) => e.t,
            Event::Submit(e) => e.t,
            Event::Scroll(e) => e.t,
            Event::Nav(e) => e.t,
            Event::Vis(e) => e.t,
            Event::Resize(e) => e.t,
            Event::Move(e) => e.t,
            Event::Err(e) => e.t,
            Event::Net(e) => e.t,
            Event::Custom(e) => e.t,
        }
    }

    /// The kind tag as it appears on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Meta(_) => "meta",
            Event::Snap(_) => "snap",
            Event::Mut(_) => "mut",
            Event::Click(_) => "click",
            Event::Input(_) => "input",
            Event::Submit(_) => "submit",
            Event::Scroll(_) => "scroll",
            Event::Nav(_) => "nav",
            Event::Vis(_) => "vis",
            Event::Resize(_) => "resize",
            Event::Move(_) => "move",
            Event::Err(_) => "err",
            Event::Net(_) => "net",
            Event::Custom(_) => "custom",
        }
    }
}

/// How a document came to be loaded (from the Navigation Timing API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadKind {
    Navigate,
    Reload,
    BackForward,
    Prerender,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    pub t: i64,
    /// Origin and path of the document, without query string or fragment.
    pub url: String,
    /// Path of the referring document when same-origin, else `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    pub load: LoadKind,
    /// Viewport width and height in CSS pixels.
    pub w: u32,
    pub h: u32,
    /// Device pixel ratio.
    #[serde(default = "one")]
    pub dpr: f64,
    /// Whether the primary pointer is coarse (touch).
    #[serde(default)]
    pub touch: bool,
    /// Version of the capture script that produced this page view.
    #[serde(default)]
    pub script: String,
}

fn one() -> f64 {
    1.0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snap {
    pub t: i64,
    /// The document node, with the whole tree below it.
    #[serde(deserialize_with = "tree")]
    pub node: Node,
    /// Initial scroll position of the document.
    #[serde(default)]
    pub sx: f64,
    #[serde(default)]
    pub sy: f64,
}

/// DOM node type, as in the DOM's `Node.nodeType`.
pub mod node_type {
    pub const ELEMENT: u8 = 1;
    pub const TEXT: u8 = 3;
    pub const CDATA: u8 = 4;
    pub const COMMENT: u8 = 8;
    pub const DOCUMENT: u8 = 9;
    pub const DOCTYPE: u8 = 10;
    pub const FRAGMENT: u8 = 11;
}

/// A serialised DOM node.
///
/// On the wire only the root of a tree (a snapshot, an added subtree, a new root) must carry
/// `id`; a node without one has the previous node's id plus one, in document order: the
/// node, its `shadow`, its `tpl`, its `frame`, then its children (`c`). Parsing fills them in
/// ([`number_tree`]), so a parsed tree has every id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    #[serde(default)]
    pub id: u64,
    /// DOM `nodeType` (see [`node_type`]).
    pub nt: u8,
    /// Lower-case tag name for elements, doctype name for doctypes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Attributes of an element, after privacy rules.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub a: BTreeMap<String, String>,
    /// Text of a text, comment or CDATA node, after masking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// Children, in document order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub c: Vec<Node>,
    /// SVG namespace.
    #[serde(default, skip_serializing_if = "is_false")]
    pub svg: bool,
    /// Excluded subtree (`data-understudy-exclude`): only its box size is sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excl: Option<[f64; 2]>,
    /// An open shadow root attached to this element (`nt` 11).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<Box<Node>>,
    /// The content document of a same-origin `<iframe>` (`nt` 9).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame: Option<Box<Node>>,
    /// The content fragment of a `<template>` (`nt` 11).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpl: Option<Box<Node>>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mutation {
    pub t: i64,
    /// Added subtrees, each placed under `p` before sibling `n` (0 = append).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adds: Vec<Add>,
    /// Removed nodes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rems: Vec<Remove>,
    /// Attribute changes; a `None` value removes the attribute.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attrs: Vec<AttrChange>,
    /// Text changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub texts: Vec<TextChange>,
    /// New roots under known elements: a shadow root attached after the element was
    /// recorded (`nt` 11), or a new document loaded into an iframe (`nt` 9). Applied after
    /// `adds`, replacing whatever root of that kind the element had.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roots: Vec<Root>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Root {
    /// The host element (shadow root) or `<iframe>` (document).
    pub id: u64,
    #[serde(deserialize_with = "tree")]
    pub node: Node,
}

/// Gives every node of a tree without an `id` the one after the previous node's, in document
/// order (the node, `shadow`, `tpl`, `frame`, children). Explicit ids are kept.
pub fn number_tree(root: &mut Node) {
    fn go(n: &mut Node, next: &mut u64) {
        if n.id == 0 {
            n.id = *next;
        }
        *next = n.id + 1;
        for r in [&mut n.shadow, &mut n.tpl, &mut n.frame]
            .into_iter()
            .flatten()
        {
            go(r, next);
        }
        for c in &mut n.c {
            go(c, next);
        }
    }
    let mut next = root.id;
    go(root, &mut next);
}

/// Deserialises a tree and numbers it. Runs within [`from_json`]'s stack for deep trees.
fn tree<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
    let mut n = Node::deserialize(d)?;
    if n.id == 0 {
        return Err(serde::de::Error::custom(
            "the root of a node tree needs an `id`",
        ));
    }
    number_tree(&mut n);
    Ok(n)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Add {
    pub p: u64,
    #[serde(default)]
    pub n: u64,
    #[serde(deserialize_with = "tree")]
    pub node: Node,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Remove {
    pub p: u64,
    pub id: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttrChange {
    pub id: u64,
    pub a: BTreeMap<String, Option<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextChange {
    pub id: u64,
    pub x: String,
}

/// What `capture.js` knows about an interaction's target at the moment of the interaction.
///
/// Only privacy-safe facts: attribute values that are structural, and names or labels only
/// when the element sits in an unmasked subtree.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Target {
    /// Lower-case tag name.
    pub tag: String,
    /// `data-testid` (or `data-test-id`, `data-test`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub testid: Option<String>,
    /// The `id` attribute, when it does not look generated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eid: Option<String>,
    /// Explicit or implicit ARIA role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Accessible name, only when unmasked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Text of the associated `<label>`, only when unmasked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The form field's `name` attribute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// `type` attribute of inputs and buttons.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "type")]
    pub kind: Option<String>,
    /// A short CSS path from the nearest anchored ancestor.
    pub path: String,
    /// Path (no query) of the link target for `<a href>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub href: Option<String>,
    /// Whether the element looks interactive (link, button, control, role, pointer cursor).
    #[serde(default)]
    pub ia: bool,
    /// Whether a click on it is expected to produce no visible reaction (text field, select…).
    #[serde(default)]
    pub quiet: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Click {
    pub t: i64,
    /// Node id of the target.
    pub id: u64,
    /// Viewport coordinates.
    pub x: f64,
    pub y: f64,
    pub tgt: Target,
    /// Mouse button (0 primary).
    #[serde(default)]
    pub btn: u8,
    /// `isTrusted` of the DOM event.
    #[serde(default = "yes")]
    pub trusted: bool,
}

fn yes() -> bool {
    true
}

/// The class of a value typed or chosen, decided in the page; the value itself never leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueClass {
    Empty,
    Email,
    /// Looks like an e-mail address but is not valid.
    BadEmail,
    Number,
    Phone,
    /// 12 to 19 digits (spaces and dashes allowed) that pass the Luhn check.
    Card,
    /// One to three words.
    ShortText,
    LongText,
    /// A `<select>` choice or a radio button.
    Choice,
    /// A checkbox state.
    Toggle,
    Date,
    Other,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Input {
    pub t: i64,
    pub id: u64,
    pub tgt: Target,
    /// Class of the final value.
    pub cls: ValueClass,
    /// Length of the final value in characters.
    pub len: u32,
    /// `input` events seen for this edit (≈ keystrokes).
    #[serde(default)]
    pub keys: u32,
    /// Time from the first to the last `input` event of this edit, ms.
    #[serde(default)]
    pub dur: u32,
    /// Deletions during the edit.
    #[serde(default)]
    pub dels: u32,
    /// Whether text arrived by paste or drop.
    #[serde(default)]
    pub paste: bool,
    /// For selects: the selected index; for toggles: 1 when checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idx: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Submit {
    pub t: i64,
    pub id: u64,
    pub tgt: Target,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scroll {
    pub t: i64,
    #[serde(default)]
    pub id: u64,
    pub x: f64,
    pub y: f64,
}

/// How the document's URL changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NavKind {
    /// `history.pushState`.
    Push,
    /// `history.replaceState`.
    Replace,
    /// `popstate` (back or forward).
    Pop,
    /// Fragment change.
    Hash,
    /// The document is being unloaded for another one.
    Leave,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Nav {
    pub t: i64,
    pub nav: NavKind,
    /// Origin and path of the new URL, without query string or fragment.
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vis {
    pub t: i64,
    pub hidden: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resize {
    pub t: i64,
    pub w: u32,
    pub h: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Move {
    pub t: i64,
    /// `[x, y, ms after t]` samples.
    pub pts: Vec<[f64; 3]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorKind {
    Console,
    Uncaught,
    Rejection,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsError {
    pub t: i64,
    pub ek: ErrorKind,
    /// The message with e-mail addresses, digits and quoted strings scrubbed, ≤ 300 chars.
    pub msg: String,
    /// Script URL without query string, line and column, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<String>,
    #[serde(default)]
    pub line: u32,
    #[serde(default)]
    pub col: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Net {
    /// When the request finished.
    pub t: i64,
    /// `fetch` or `xhr`.
    pub via: String,
    pub method: String,
    /// Origin and path, without query string or fragment.
    pub url: String,
    /// HTTP status; 0 for a network error or abort.
    pub status: u16,
    /// Duration in ms.
    pub dur: u32,
    /// Allow-listed response/request headers, when configured.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hdr: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Custom {
    pub t: i64,
    pub name: String,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub data: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(events: &str) -> Result<Batch, serde_json::Error> {
        serde_json::from_str(&format!(
            r#"{{"v":1,"sid":"s1","pvid":"p1","seq":0,"events":{events}}}"#
        ))
    }

    #[test]
    fn parses_every_event_kind() {
        let b = batch(
            r#"[
            {"k":"meta","t":1,"url":"http://a/x","load":"navigate","w":800,"h":600},
            {"k":"snap","t":2,"node":{"id":1,"nt":9,"c":[{"id":2,"nt":1,"tag":"html"}]}},
            {"k":"mut","t":3,"adds":[{"p":2,"n":0,"node":{"id":3,"nt":3,"x":"***"}}],"rems":[{"p":2,"id":3}],
             "attrs":[{"id":2,"a":{"class":"x","gone":null}}],"texts":[{"id":3,"x":"**"}]},
            {"k":"click","t":4,"id":2,"x":1,"y":2,"tgt":{"tag":"button","path":"body>button","ia":true}},
            {"k":"input","t":5,"id":3,"tgt":{"tag":"input","path":"form>input"},"cls":"email","len":12,"keys":12,"dur":900},
            {"k":"submit","t":6,"id":4,"tgt":{"tag":"form","path":"form"}},
            {"k":"scroll","t":7,"x":0,"y":100},
            {"k":"nav","t":8,"nav":"push","url":"http://a/y"},
            {"k":"vis","t":9,"hidden":true},
            {"k":"resize","t":10,"w":1,"h":2},
            {"k":"move","t":11,"pts":[[1,2,0],[3,4,50]]},
            {"k":"err","t":12,"ek":"uncaught","msg":"boom"},
            {"k":"net","t":13,"via":"fetch","method":"POST","url":"http://a/api","status":500,"dur":20},
            {"k":"custom","t":14,"name":"identify"}
        ]"#,
        )
        .unwrap();
        b.validate().unwrap();
        assert_eq!(b.events.len(), 14);
        assert_eq!(b.first_t(), Some(1));
        assert_eq!(b.last_t(), Some(14));
        let kinds: Vec<_> = b.events.iter().map(Event::kind).collect();
        assert_eq!(kinds[0], "meta");
        assert_eq!(kinds[13], "custom");
        // Round trip keeps everything.
        let again: Batch = serde_json::from_str(&serde_json::to_string(&b).unwrap()).unwrap();
        assert_eq!(again, b);
    }

    /// A snapshot of `levels` nested `<div>`s.
    fn deep_snapshot(levels: usize) -> String {
        let mut s = String::from(
            r#"{"v":1,"sid":"s1","pvid":"p1","seq":0,"events":[{"k":"snap","t":1,"node":"#,
        );
        for i in 0..levels {
            s.push_str(&format!(r#"{{"id":{},"nt":1,"tag":"div","c":["#, i + 1));
        }
        s.push_str(r#"{"id":0,"nt":3,"x":"*"}"#);
        s.push_str(&"]}".repeat(levels));
        s.push_str("}]}");
        s
    }

    #[test]
    fn deep_documents_parse_and_serialise_on_a_small_stack() {
        // 1 500 nested elements: 3 000 JSON levels, past serde_json's limit of 128, on a
        // thread with a 256 KiB stack.
        std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(|| {
                let text = deep_snapshot(1500);
                assert!(json_depth(&text) > 3000);
                let b: Batch = from_json(&text).unwrap();
                let again = to_json(&b).unwrap();
                assert_eq!(json_depth(&again), json_depth(&text));
                let events = events_to_json(&b.events).unwrap();
                assert!(events_depth(&b.events) >= json_depth(&events));
                assert!(again.contains(&events));
                assert_eq!(again.matches(r#""tag":"div""#).count(), 1500);
                // Comparing or dropping the tree recurses too; neither is what this is about.
                std::mem::forget(b);
            })
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn implicit_ids_follow_document_order_and_the_root_needs_one() {
        let b = batch(
            r#"[{"k":"snap","t":1,"node":{"id":1,"nt":9,"c":[
                {"nt":1,"tag":"div","shadow":{"nt":11,"c":[{"nt":3,"x":"*"}]},"c":[{"nt":3,"x":"**"}]},
                {"nt":1,"tag":"template","tpl":{"nt":11,"c":[{"nt":8,"x":"*"}]}},
                {"id":40,"nt":1,"tag":"p"},{"nt":3,"x":"*"}]}},
              {"k":"mut","t":2,"adds":[{"p":1,"n":0,"node":{"id":50,"nt":1,"tag":"iframe",
                "frame":{"nt":9,"c":[{"nt":1,"tag":"html"}]}}}]}]"#,
        )
        .unwrap();
        let Event::Snap(snap) = &b.events[0] else {
            panic!()
        };
        let div = &snap.node.c[0];
        let shadow = div.shadow.as_ref().unwrap();
        let tpl = snap.node.c[1].tpl.as_ref().unwrap();
        assert_eq!(
            [
                div.id,
                shadow.id,
                shadow.c[0].id,
                div.c[0].id,
                snap.node.c[1].id,
                tpl.id,
                tpl.c[0].id
            ],
            [2, 3, 4, 5, 6, 7, 8]
        );
        // An explicit id is kept and the count goes on from it.
        assert_eq!((snap.node.c[2].id, snap.node.c[3].id), (40, 41));
        let Event::Mut(m) = &b.events[1] else {
            panic!()
        };
        let frame = m.adds[0].node.frame.as_ref().unwrap();
        assert_eq!((frame.id, frame.c[0].id), (51, 52));
        let err = batch(r#"[{"k":"snap","t":1,"node":{"nt":9}}]"#).unwrap_err();
        assert!(err.to_string().contains("needs an `id`"), "{err}");
    }

    #[test]
    fn nesting_past_the_limit_is_refused_before_parsing() {
        let text = deep_snapshot(MAX_JSON_DEPTH);
        assert!(matches!(from_json::<Batch>(&text), Err(JsonError::TooDeep)));
        // Brackets inside strings do not count.
        let quoted = format!(r#"["{}"]"#, "[".repeat(10_000));
        assert_eq!(json_depth(&quoted), 1);
        assert_eq!(json_depth(r#"["\"[", 1]"#), 1);
        assert!(from_json::<Vec<String>>(&quoted).is_ok());
    }

    #[test]
    fn rejects_unknown_kind_and_wrong_types() {
        // The kind first (read at once) and the kind later (the object buffered) alike.
        for (events, says) in [
            (r#"[{"k":"teleport","t":1}]"#, "unknown variant `teleport`"),
            (r#"[{"t":1,"k":"teleport"}]"#, "unknown variant `teleport`"),
            (r#"[{"k":"vis","t":"soon","hidden":true}]"#, "invalid type"),
            (r#"[{"hidden":true,"t":"soon","k":"vis"}]"#, "invalid type"),
            (r#"[{"k":"vis","hidden":true}]"#, "missing field `t`"),
            (r#"[{"hidden":true,"k":"vis"}]"#, "missing field `t`"),
            (r#"[{"t":1,"hidden":true}]"#, "missing field `k`"),
            (r#"[{}]"#, "missing field `k`"),
            (
                r#"[{"t":1,"k":"vis","t":2,"hidden":true}]"#,
                "duplicate field `t`",
            ),
            (r#"[{"k":7,"t":1}]"#, "invalid type"),
            (r#"[{"t":1,"k":null}]"#, "invalid type"),
            (r#"["vis"]"#, "invalid type"),
            (r#"{"k":"vis"}"#, "invalid type"),
        ] {
            let err = batch(events).unwrap_err().to_string();
            assert!(err.contains(says), "{events}: {err}");
        }
    }

    #[test]
    fn the_kind_may_come_anywhere_in_an_event() {
        let b = batch(
            r#"[
            {"k":"meta","t":1,"url":"http://a/x","load":"navigate","w":800,"h":600},
            {"k":"snap","t":2,"node":{"id":1,"nt":9,"c":[{"nt":1,"tag":"html","a":{"lang":"en"}}]}},
            {"k":"mut","t":3,"adds":[{"p":2,"n":0,"node":{"id":3,"nt":1,"tag":"p","c":[{"nt":3,"x":"*"}]}}],
             "roots":[{"id":3,"node":{"id":9,"nt":11}}]},
            {"k":"click","t":4,"id":2,"x":1,"y":2,"tgt":{"tag":"button","path":"body>button"}},
            {"k":"move","t":11,"pts":[[1,2,0],[3,4,50]]},
            {"k":"net","t":13,"via":"fetch","method":"POST","url":"http://a/api","status":500,"dur":20},
            {"k":"custom","t":14,"name":"identify","data":{"user":"ann","n":[1,{"d":2}]}}
        ]"#,
        )
        .unwrap();
        for event in &b.events {
            let mut object = serde_json::to_value(event).unwrap();
            let kind = object.as_object_mut().unwrap().remove("k").unwrap();
            let mut last = object.to_string();
            last.pop();
            last.push_str(&format!(r#","k":{kind}}}"#));
            let back: Event = serde_json::from_str(&last).unwrap();
            assert_eq!(&back, event, "{last}");
            // And from a `Value`, which is how the buffered path reads.
            let from_value: Event =
                serde_json::from_value(serde_json::to_value(event).unwrap()).unwrap();
            assert_eq!(&from_value, event);
        }
    }

    /// [`json_depth`] as it was first written, a byte at a time: the reference.
    fn json_depth_bytewise(text: &str) -> usize {
        let (mut depth, mut max, mut in_str, mut esc) = (0usize, 0usize, false, false);
        for b in text.bytes() {
            if in_str {
                match b {
                    _ if esc => esc = false,
                    b'\\' => esc = true,
                    b'"' => in_str = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => in_str = true,
                b'{' | b'[' => {
                    depth += 1;
                    max = max.max(depth);
                }
                b'}' | b']' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        max
    }

    proptest::proptest! {
        #[test]
        fn json_depth_agrees_with_a_byte_at_a_time(text in r#"[\[\]{}"\\a:,é]{0,64}"#) {
            proptest::prop_assert_eq!(json_depth(&text), json_depth_bytewise(&text));
        }
    }

    #[test]
    fn events_depth_bounds_what_is_written() {
        let b: Batch = from_json(&deep_snapshot(40)).unwrap();
        let written = events_to_json(&b.events).unwrap();
        assert_eq!(written, serde_json::to_string(&b.events).unwrap());
        assert!(events_depth(&b.events) >= json_depth(&written));
        let c = batch(r#"[{"k":"custom","t":1,"name":"x","data":[[[[{"a":[1]}]]]]}]"#).unwrap();
        let written = events_to_json(&c.events).unwrap();
        assert!(events_depth(&c.events) >= json_depth(&written));
        assert_eq!(value_depth(&serde_json::json!([[[[{"a":[1]}]]]])), 6);
    }

    #[test]
    fn validate_checks_version_ids_and_size() {
        let mut b = batch(r#"[{"k":"vis","t":1,"hidden":false}]"#).unwrap();
        b.v = 2;
        assert_eq!(b.validate(), Err(BatchError::Version { found: 2 }));
        b.v = 1;
        b.sid = "../../etc/passwd".into();
        assert_eq!(b.validate(), Err(BatchError::BadId { field: "sid" }));
        b.sid = "x".repeat(MAX_ID_LEN + 1);
        assert!(b.validate().is_err());
        b.sid = "ok".into();
        b.events.clear();
        assert_eq!(b.validate(), Err(BatchError::Empty));
    }
}
