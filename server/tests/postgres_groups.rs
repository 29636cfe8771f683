//! Groups on the PostgreSQL store, through the synchronous trait the server uses, called
//! from a plain thread and from inside a single-threaded runtime (where a naive
//! `block_on` would panic or hang), and seen by a second node at once.

mod common;

use common::postgres::Postgres;
use server::store::GroupStore;
use server::store::postgres::{PgBlocking, PgSettings};
use telemetry::query::Group;

fn group(id: &str, name: &str) -> Group {
    Group { id: id.into(), name: name.into(), query: "tag:site=greenhouse".into(), updated: 1 }
}

fn names(store: &impl GroupStore) -> Vec<String> {
    store.groups().unwrap().into_iter().map(|g| g.name).collect()
}

#[test]
fn groups_are_kept_by_id_listed_by_name_and_seen_by_every_node() {
    let pg = Postgres::start();
    let a = PgBlocking::open(&PgSettings::new(&pg.url)).unwrap();
    let b = PgBlocking::open(&PgSettings::new(&pg.url)).unwrap();
    assert!(a.groups().unwrap().is_empty());
    assert!(!a.delete_group("x").unwrap(), "nothing to delete");
    a.put_group(&group("x", "Zebra")).unwrap();
    a.put_group(&group("y", "apple")).unwrap();
    a.put_group(&group("x", "zebra 2")).unwrap();
    assert_eq!(names(&b), ["apple", "zebra 2"], "the other node reads the save at once");
    assert!(b.delete_group("y").unwrap());
    assert_eq!(names(&a), ["zebra 2"]);
    drop(a);
    // Opened again, the store reads what was saved.
    let a = PgBlocking::open(&PgSettings::new(&pg.url)).unwrap();
    assert_eq!(a.groups().unwrap(), [group("x", "zebra 2")]);
}

#[tokio::test(flavor = "current_thread")]
async fn the_store_answers_and_drops_inside_a_runtime() {
    let pg = Postgres::start();
    let store = PgBlocking::open(&PgSettings::new(&pg.url)).unwrap();
    store.put_group(&group("g", "inside")).unwrap();
    assert_eq!(names(&store), ["inside"]);
    drop(store);
    tokio::task::spawn_blocking(move || drop(pg)).await.unwrap();
}

#[test]
fn a_stopped_database_is_an_error_not_a_hang() {
    let pg = Postgres::start();
    let store = PgBlocking::open(&PgSettings::new(&pg.url)).unwrap();
    store.put_group(&group("g", "kept")).unwrap();
    drop(pg);
    let started = std::time::Instant::now();
    let err = store.groups().unwrap_err();
    assert_eq!(telemetry::SourceError::from(err), telemetry::SourceError::Unavailable);
    assert!(started.elapsed() < std::time::Duration::from_secs(15), "within the pool's wait");
}
