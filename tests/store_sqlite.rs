//! The store test suite (`tests/store_suite`) on SQLite: a fresh file per test.

#[macro_use]
mod store_suite;

use store_suite::Place;
use understudy::store::DbSpec;

fn sqlite() -> Place {
    let dir = tempfile::tempdir().unwrap();
    Place {
        spec: DbSpec::Sqlite(dir.path().join("sessions.db")),
        keep: Box::new(dir),
    }
}

store_suite!(sqlite);
