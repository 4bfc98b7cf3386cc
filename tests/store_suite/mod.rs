//! The store test suite, written once against the `SessionStore` trait and run for every
//! backend: `store_suite!(open)` expands to one `#[test]` per case below, where `open()`
//! returns a fresh, empty [`Place`]. Each case opens the store with
//! `understudy::store::open`, the function every command uses, and works on
//! `&mut dyn SessionStore`.
#![allow(dead_code)]

use understudy::event::{Batch, SCHEMA_VERSION};
use understudy::store::{
    self, DbSpec, EncodedBatch, ForgetReport, PutOutcome, PutReport, SessionStore, SessionSummary,
    StoreError,
};

/// An empty database, and whatever keeps it alive (a temporary directory, a schema).
pub struct Place {
    pub spec: DbSpec,
    pub keep: Box<dyn std::any::Any>,
}

/// Expands to one test per suite case, each on a fresh place from `$open()`.
macro_rules! store_suite {
    ($open:path) => {
        store_suite!(@cases $open;
            duplicate_is_stored_once,
            out_of_order_arrival_is_ordered_on_read,
            put_batches_is_all_or_nothing,
            put_batches_each_answers_every_batch_in_order,
            unknown_session_is_not_found,
            summary_tracks_bounds_pages_url_and_user,
            listing_orders_by_start_then_id_bytewise,
            data_survives_reopen,
            large_deep_and_unicode_batches_round_trip,
            forget_removes_every_session_that_ever_identified_the_user,
            claims_scope_forget_and_listing_to_a_project,
            prune_deletes_sessions_by_last_receipt
        );
    };
    (@cases $open:path; $($case:ident),*) => {
        $(
            #[test]
            fn $case() {
                let place = $open();
                crate::store_suite::$case(&place.spec);
            }
        )*
    };
}

const T: i64 = 1_733_300_000_000;

fn open(spec: &DbSpec) -> Box<dyn SessionStore + Send> {
    store::open(spec).unwrap_or_else(|e| panic!("open {spec}: {e}"))
}

pub fn batch(sid: &str, pvid: &str, seq: u64, events: &str) -> Batch {
    let b: Batch = understudy::event::from_json(&format!(
        r#"{{"v":1,"sid":"{sid}","pvid":"{pvid}","seq":{seq},"events":{events}}}"#
    ))
    .unwrap();
    b.validate().unwrap();
    b
}

pub fn vis(sid: &str, seq: u64, t: i64) -> Batch {
    batch(
        sid,
        "p1",
        seq,
        &format!(r#"[{{"k":"vis","t":{t},"hidden":false}}]"#),
    )
}

fn identify(sid: &str, seq: u64, user: &str) -> Batch {
    batch(
        sid,
        &format!("p-{sid}"),
        seq,
        &format!(r#"[{{"k":"custom","t":{T},"name":"identify","data":{{"user":{user}}}}}]"#),
    )
}

fn note(sid: &str, seq: u64, text: &str) -> Batch {
    batch(
        sid,
        &format!("p-{sid}"),
        seq,
        &format!(r#"[{{"k":"custom","t":{T},"name":"note","data":{{"text":"{text}"}}}}]"#),
    )
}

fn ids(store: &dyn SessionStore) -> Vec<String> {
    store
        .list_sessions()
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect()
}

fn seqs(store: &dyn SessionStore, sid: &str) -> Vec<u64> {
    store
        .session_batches(sid)
        .unwrap()
        .iter()
        .map(|b| b.seq)
        .collect()
}

pub fn duplicate_is_stored_once(spec: &DbSpec) {
    let store: &mut dyn SessionStore = &mut *open(spec);
    let b = vis("s1", 0, 1_000);
    assert_eq!(store.put_batch(&b, 5).unwrap(), PutOutcome::Stored);
    let mut changed = b.clone();
    changed.pvid = "other".into();
    assert_eq!(store.put_batch(&changed, 6).unwrap(), PutOutcome::Duplicate);
    assert_eq!(store.session_batches("s1").unwrap(), vec![b]);
    let s = &store.list_sessions().unwrap()[0];
    assert_eq!((s.batches, s.events, s.pages), (1, 1, 1));
}

pub fn out_of_order_arrival_is_ordered_on_read(spec: &DbSpec) {
    let store: &mut dyn SessionStore = &mut *open(spec);
    for seq in [3, 0, 12, 2, 1, 10] {
        store
            .put_batch(&vis("s1", seq, 1_000 + seq as i64), 0)
            .unwrap();
    }
    assert_eq!(seqs(store, "s1"), [0, 1, 2, 3, 10, 12]);
}

pub fn put_batches_is_all_or_nothing(spec: &DbSpec) {
    let store: &mut dyn SessionStore = &mut *open(spec);
    store.put_batch(&vis("s1", 0, 1_000), 0).unwrap();
    let mut bad = vis("s2", 1, 1_000);
    bad.v = SCHEMA_VERSION + 1;
    let err = store
        .put_batches(&[vis("s2", 0, 1_000), bad, vis("s3", 0, 1_000)], 0)
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid { seq: 1, .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("batch 1 of session `s2` is invalid: unsupported schema version"),
        "{err}"
    );
    assert_eq!(ids(store), ["s1"]);
    assert!(matches!(
        store.session_batches("s2"),
        Err(StoreError::NotFound(_))
    ));

    // The good ones go in together, and duplicates (also within the call) are counted.
    let report = store
        .put_batches(
            &[
                vis("s1", 0, 1_000),
                vis("s2", 0, 1_000),
                vis("s2", 0, 1_000),
            ],
            0,
        )
        .unwrap();
    assert_eq!(
        report,
        PutReport {
            stored: 1,
            duplicates: 2,
            foreign: 0,
        }
    );
}

pub fn put_batches_each_answers_every_batch_in_order(spec: &DbSpec) {
    let store: &mut dyn SessionStore = &mut *open(spec);
    store.put_batch(&vis("s-a", 1, 1_000), 0).unwrap();
    let group = [
        vis("s-a", 0, 1_000),
        vis("s-a", 1, 1_000),
        vis("s-b", 0, 2_000),
        vis("s-a", 0, 1_000),
        vis("s-c", 5, 3_000),
        vis("s-b", 0, 2_000),
    ];
    let outcomes = store.put_batches_each(&group, 7).unwrap();
    use PutOutcome::{Duplicate as D, Stored as S};
    assert_eq!(outcomes, [S, D, S, D, S, D]);
    assert!(store.put_batches_each(&[], 7).unwrap().is_empty());
    assert_eq!(ids(store), ["s-a", "s-b", "s-c"]);
    assert_eq!(seqs(store, "s-a"), [0, 1]);
    let batches: u64 = store
        .list_sessions()
        .unwrap()
        .iter()
        .map(|s| s.batches)
        .sum();
    assert_eq!(batches, 4);
}

pub fn unknown_session_is_not_found(spec: &DbSpec) {
    let store = open(spec);
    match store.session_batches("nope") {
        Err(err @ StoreError::NotFound(_)) => {
            assert_eq!(err.to_string(), "no session with id `nope`")
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
}

pub fn summary_tracks_bounds_pages_url_and_user(spec: &DbSpec) {
    let store: &mut dyn SessionStore = &mut *open(spec);
    let meta = |t: i64, url: &str| {
        format!(r#"{{"k":"meta","t":{t},"url":"{url}","load":"navigate","w":800,"h":600}}"#)
    };
    let ident = |t: i64, user: &str| {
        format!(r#"{{"k":"custom","t":{t},"name":"identify","data":{{"user":"{user}"}}}}"#)
    };
    // The second page view arrives first.
    store
        .put_batch(
            &batch(
                "s1",
                "p2",
                2,
                &format!("[{}, {}]", meta(5_000, "http://a/two"), ident(5_100, "bob")),
            ),
            0,
        )
        .unwrap();
    store
        .put_batch(
            &batch(
                "s1",
                "p1",
                0,
                &format!("[{}, {}]", meta(1_000, "http://a/one"), ident(1_100, "ann")),
            ),
            0,
        )
        .unwrap();
    store.put_batch(&vis("s1", 1, 9_000), 0).unwrap();
    store.put_batch(&vis("s0", 0, 500), 0).unwrap();

    let list = store.list_sessions().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].id, "s0", "oldest first");
    assert_eq!(
        list[1],
        SessionSummary {
            id: "s1".into(),
            started_at: 1_000,
            ended_at: 9_000,
            batches: 3,
            events: 5,
            pages: 2,
            first_url: Some("http://a/one".into()),
            user: Some("bob".into()),
        }
    );
}

pub fn listing_orders_by_start_then_id_bytewise(spec: &DbSpec) {
    let store: &mut dyn SessionStore = &mut *open(spec);
    // Same start: ids order by their bytes ('-' < digits < upper < '_' < lower), as
    // SQLite compares text, whatever the database's locale.
    let sids = ["s_a", "s-b", "S-b", "s-B", "s-a", "s1", "S_A"];
    for sid in sids {
        store.put_batch(&vis(sid, 0, 5_000), 0).unwrap();
    }
    store.put_batch(&vis("z-early", 0, 4_000), 0).unwrap();
    let mut want: Vec<&str> = sids.to_vec();
    want.sort_unstable();
    want.insert(0, "z-early");
    assert_eq!(ids(store), want);
}

pub fn data_survives_reopen(spec: &DbSpec) {
    let b = batch(
        "s1",
        "p1",
        0,
        r#"[{"k":"custom","t":1000,"name":"note","data":{"canary":"CANARY-7f3a"}}]"#,
    );
    open(spec).put_batch(&b, 0).unwrap();
    let mut store = open(spec);
    assert_eq!(store.session_batches("s1").unwrap(), vec![b.clone()]);
    assert_eq!(store.put_batch(&b, 0).unwrap(), PutOutcome::Duplicate);
}

pub fn large_deep_and_unicode_batches_round_trip(spec: &DbSpec) {
    // Building, comparing and dropping a deep tree recurses (the store's own JSON
    // encoding and decoding does not): give the test a stack for it.
    let spec = spec.clone();
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(move || large_deep_and_unicode(&spec))
        .unwrap()
        .join()
        .unwrap();
}

fn large_deep_and_unicode(spec: &DbSpec) {
    let store: &mut dyn SessionStore = &mut *open(spec);
    // 300 kB of text with multi-byte characters and JSON escapes.
    let text = "ünïcødé \\\"quoted\\\" 🦀 ".repeat(10_000);
    let big = note("s-big", 0, &text);
    // A DOM 2 000 levels deep, as deep pages send.
    let mut node = String::from(r#"{"id":2001,"nt":1,"tag":"b"}"#);
    for id in (2..=2000).rev() {
        node = format!(r#"{{"id":{id},"nt":1,"tag":"div","c":[{node}]}}"#);
    }
    let deep = batch(
        "s-deep",
        "p1",
        0,
        &format!(r#"[{{"k":"snap","t":{T},"node":{{"id":1,"nt":9,"c":[{node}]}}}}]"#),
    );
    store.put_batches(&[big.clone(), deep.clone()], 0).unwrap();
    assert_eq!(store.session_batches("s-big").unwrap(), vec![big]);
    assert_eq!(store.session_batches("s-deep").unwrap(), vec![deep]);
}

pub fn forget_removes_every_session_that_ever_identified_the_user(spec: &DbSpec) {
    let store: &mut dyn SessionStore = &mut *open(spec);
    // ann logs in, later the tab switches to bob: the session is still ann's too.
    store
        .put_batch(&identify("s-ann", 0, r#""ann""#), T)
        .unwrap();
    store
        .put_batch(&identify("s-ann", 1, r#""bob""#), T)
        .unwrap();
    store.put_batch(&note("s-ann", 2, "x"), T).unwrap();
    // ann's id arrives in a later batch than the first.
    store.put_batch(&note("s-ann2", 0, "y"), T).unwrap();
    store
        .put_batch(&identify("s-ann2", 1, r#""ann""#), T)
        .unwrap();
    // A numeric id, and sessions of others that mention ann only in other fields.
    store.put_batch(&identify("s-42", 0, "42"), T).unwrap();
    store
        .put_batch(&identify("s-anne", 0, r#""anne""#), T)
        .unwrap();
    store.put_batch(&note("s-text", 0, "ann"), T).unwrap();

    let report = store.forget_user("ann", None).unwrap();
    assert_eq!(
        report,
        ForgetReport {
            sessions: 2,
            batches: 5,
            events: 5
        }
    );
    assert_eq!(ids(store), ["s-42", "s-anne", "s-text"]);
    assert!(matches!(
        store.session_batches("s-ann"),
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store.forget_user("ann", None).unwrap(),
        ForgetReport::default()
    );
    assert_eq!(store.forget_user("42", None).unwrap().sessions, 1);
    assert_eq!(ids(store), ["s-anne", "s-text"]);
    // A forgotten session can be recorded again from scratch.
    store
        .put_batch(&identify("s-ann", 0, r#""ann""#), T)
        .unwrap();
    assert_eq!(seqs(store, "s-ann"), [0]);
}

/// Puts one batch for `project`, as a collector with projects does.
fn put_for(store: &mut dyn SessionStore, batch: &Batch, project: &str) -> PutOutcome {
    let encoded = EncodedBatch::of(batch).unwrap().for_project(project);
    store.put_encoded(&[encoded], T).unwrap()[0]
}

pub fn claims_scope_forget_and_listing_to_a_project(spec: &DbSpec) {
    use PutOutcome::{Duplicate as D, Foreign as F, Stored as S};
    let store: &mut dyn SessionStore = &mut *open(spec);
    // A project's first batch claims the session; another project cannot add to it,
    // not even a copy of a batch that is stored already.
    assert_eq!(put_for(store, &identify("s-a", 0, r#""ann""#), "shop"), S);
    assert_eq!(put_for(store, &identify("s-a", 1, r#""ann""#), "blog"), F);
    assert_eq!(put_for(store, &identify("s-a", 0, r#""ann""#), "blog"), F);
    assert_eq!(seqs(store, "s-a"), [0]);
    // Within one transaction, a later batch sees an earlier one's claim.
    let group: Vec<EncodedBatch> = [(0, "blog"), (1, "shop"), (0, "blog"), (1, "blog")]
        .iter()
        .map(|&(seq, p)| {
            EncodedBatch::of(&identify("s-b", seq, r#""ann""#))
                .unwrap()
                .for_project(p)
        })
        .collect();
    assert_eq!(store.put_encoded(&group, T).unwrap(), [S, F, D, S]);
    assert_eq!(seqs(store, "s-b"), [0, 1]);
    // Without a project nothing is claimed.
    store.put_batch(&identify("s-c", 0, r#""ann""#), T).unwrap();
    assert_eq!(
        store.session_project("s-a").unwrap().as_deref(),
        Some("shop")
    );
    assert_eq!(store.session_project("s-c").unwrap(), None);
    let listed: Vec<String> = store
        .list_project_sessions("blog")
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(listed, ["s-b"]);

    assert_eq!(store.forget_user("ann", Some("blog")).unwrap().sessions, 1);
    assert_eq!(ids(store), ["s-a", "s-c"]);
    assert_eq!(store.session_project("s-b").unwrap(), None, "claim deleted");
    // A forgotten session is nobody's: the next project to send to it claims it.
    assert_eq!(put_for(store, &note("s-b", 2, "again"), "shop"), S);
    assert_eq!(
        store.session_project("s-b").unwrap().as_deref(),
        Some("shop")
    );
    // So is a session stored without a project.
    assert_eq!(put_for(store, &note("s-c", 1, "later"), "blog"), S);
    assert_eq!(
        store.session_project("s-c").unwrap().as_deref(),
        Some("blog")
    );
    // Forgetting by another connection (the CLI, next to a running collector) cannot
    // leave a project's session unclaimed: its next batch claims it again.
    {
        let mut other = open(spec);
        assert_eq!(other.forget_user("ann", Some("shop")).unwrap().sessions, 1);
    }
    assert_eq!(store.session_project("s-a").unwrap(), None);
    assert_eq!(put_for(store, &note("s-a", 5, "after"), "shop"), S);
    assert_eq!(
        store.session_project("s-a").unwrap().as_deref(),
        Some("shop")
    );
    assert_eq!(put_for(store, &note("s-a", 6, "intruder"), "blog"), F);
    assert_eq!(store.forget_user("ann", None).unwrap().sessions, 1);
    assert_eq!(ids(store), ["s-a", "s-b"]);
}

pub fn prune_deletes_sessions_by_last_receipt(spec: &DbSpec) {
    let store: &mut dyn SessionStore = &mut *open(spec);
    let day = 86_400_000;
    let now = T + 100 * day;
    store
        .put_batch(&note("s-old", 0, "a"), now - 40 * day)
        .unwrap();
    // Began long ago, but still receiving: kept.
    store
        .put_batch(&note("s-live", 0, "a"), now - 40 * day)
        .unwrap();
    store.put_batch(&note("s-live", 1, "b"), now - day).unwrap();
    store.put_batch(&note("s-new", 0, "a"), now).unwrap();
    let bulk: Vec<Batch> = (0..600)
        .map(|i| note(&format!("s-bulk{i}"), 0, "a"))
        .collect();
    store.put_batches(&bulk, now - 31 * day).unwrap();
    let report = store.prune_sessions(now - 30 * day).unwrap();
    assert_eq!(report.sessions, 601);
    assert_eq!(report.batches, 601);
    assert_eq!(ids(store), ["s-live", "s-new"]);
    assert_eq!(seqs(store, "s-live"), [0, 1]);
    assert_eq!(
        store.prune_sessions(now - 30 * day).unwrap(),
        ForgetReport::default()
    );
}
