//! Users, sign-in sessions and device keys (`UserStore`) on PostgreSQL, against a real
//! PostgreSQL started per test: the same behaviour test run on the redb store and on
//! PostgreSQL; two nodes racing for the last admin and for the last place under a cap; two
//! nodes' `Auth` on one database, where a sign-in, a sign-out, a password change, the setup
//! and a revoked device key on one are seen on the other; and a session kept across kill -9
//! of the database.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::postgres::Postgres;
use server::auth::user_store::{Added, Change, SessionRecord, UserRecord, UserStore};
use server::auth::users::UserDb;
use server::auth::{Auth, AuthConfig, AuthEvent, KEYS_FRESH};
use server::store::postgres::{PgBlocking, PgSettings};
use telemetry::{Role, SessionUser};

const PEER: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// 2025-12-06 05:46:40 UTC.
const NOW: i64 = 1_765_000_000_000;
const HOUR: i64 = 3_600_000;

fn open(pg: &Postgres) -> PgBlocking {
    PgBlocking::open(&PgSettings::new(&pg.url)).unwrap()
}

fn record(name: &str, role: Role) -> UserRecord {
    UserRecord { name: name.into(), password: format!("$argon2id$hash-of-{name}"), role, created: NOW }
}

/// A token's hash as the server makes it: 32 bytes.
fn hash(n: u8) -> Vec<u8> {
    vec![n; 32]
}

fn session(user: &str, expires: i64) -> SessionRecord {
    SessionRecord { user: user.into(), expires }
}

fn who(store: &impl UserStore, token: u8, now: i64) -> Option<(String, Role)> {
    store.session_user(&hash(token), now).unwrap().map(|u| (u.name, u.role))
}

fn names(store: &impl UserStore) -> Vec<(String, Role)> {
    store.list().unwrap().into_iter().map(|u| (u.name, u.role)).collect()
}

/// What the store promises, whichever store it is.
fn check_users_sessions_and_keys(store: &impl UserStore) {
    // Users: the first only while there is none; names taken; the cap counted.
    assert_eq!(store.count().unwrap(), 0);
    assert_eq!(store.insert_first(&record("ann", Role::Admin)).unwrap(), Added::New);
    assert_eq!(store.insert_first(&record("eve", Role::Admin)).unwrap(), Added::Taken, "setup is done");
    assert_eq!(store.insert_new(&record("ann", Role::Viewer), 3).unwrap(), Added::Taken);
    assert_eq!(store.get("ann").unwrap().unwrap().role, Role::Admin, "the taken name is unchanged");
    assert_eq!(store.insert_new(&record("bob", Role::Viewer), 3).unwrap(), Added::New);
    assert_eq!(store.put(&record("Zed", Role::Viewer), 3).unwrap(), Added::New);
    assert_eq!(store.insert_new(&record("dan", Role::Viewer), 3).unwrap(), Added::Full);
    assert_eq!(store.put(&record("dan", Role::Viewer), 3).unwrap(), Added::Full);
    assert_eq!(store.count().unwrap(), 3);
    assert_eq!(
        names(store),
        [("Zed".into(), Role::Viewer), ("ann".into(), Role::Admin), ("bob".into(), Role::Viewer)],
        "by name, bytewise"
    );
    assert_eq!(store.get("nobody").unwrap(), None);

    // Sessions: the user's, until they expire; beyond the cap, the closest to expiry end.
    store.put_session(&hash(1), &session("ann", NOW + HOUR), 2).unwrap();
    store.put_session(&hash(2), &session("ann", NOW + 3 * HOUR), 2).unwrap();
    store.put_session(&hash(3), &session("ann", NOW + 2 * HOUR), 2).unwrap();
    store.put_session(&hash(4), &session("bob", NOW + HOUR), 2).unwrap();
    assert_eq!(who(store, 1, NOW), None, "the third session ended the one closest to expiry");
    assert_eq!(who(store, 2, NOW), Some(("ann".into(), Role::Admin)));
    assert_eq!(who(store, 3, NOW + 2 * HOUR - 1), Some(("ann".into(), Role::Admin)));
    assert_eq!(who(store, 3, NOW + 2 * HOUR), None, "expired at its instant");
    assert_eq!(who(store, 4, NOW), Some(("bob".into(), Role::Viewer)), "another user's is not counted");
    assert_eq!(who(store, 9, NOW), None);
    assert_eq!(store.session_count().unwrap(), 3);

    // A reset (put over an existing user) and a password change end the user's sessions.
    assert_eq!(store.put(&record("bob", Role::Viewer), 3).unwrap(), Added::Replaced, "at the cap, replacing");
    assert_eq!(who(store, 4, NOW), None);
    store.put_session(&hash(5), &session("bob", NOW + HOUR), 2).unwrap();
    assert!(store.set_password("bob", "$argon2id$new").unwrap());
    assert_eq!(store.get("bob").unwrap().unwrap().password, "$argon2id$new");
    assert_eq!(who(store, 5, NOW), None, "a password change ends every session");
    assert_eq!(who(store, 2, NOW), Some(("ann".into(), Role::Admin)), "not another user's");
    assert!(!store.set_password("nobody", "$argon2id$x").unwrap());

    // The last admin stays.
    assert_eq!(store.change_keeping_an_admin("nobody", None).unwrap(), Change::NoSuchUser);
    assert_eq!(store.change_keeping_an_admin("ann", Some(Role::Viewer)).unwrap(), Change::LastAdmin);
    assert_eq!(store.change_keeping_an_admin("ann", None).unwrap(), Change::LastAdmin);
    assert_eq!(store.change_keeping_an_admin("ann", Some(Role::Admin)).unwrap(), Change::Done, "no change");
    assert_eq!(store.change_keeping_an_admin("bob", Some(Role::Admin)).unwrap(), Change::Done);
    assert_eq!(who(store, 2, NOW), Some(("ann".into(), Role::Admin)));
    assert_eq!(store.change_keeping_an_admin("ann", Some(Role::Viewer)).unwrap(), Change::Done);
    assert_eq!(who(store, 2, NOW), Some(("ann".into(), Role::Viewer)), "a role change shows at once");
    assert_eq!(store.change_keeping_an_admin("bob", None).unwrap(), Change::LastAdmin);
    assert_eq!(store.change_keeping_an_admin("Zed", None).unwrap(), Change::Done);
    assert_eq!(names(store), [("ann".into(), Role::Viewer), ("bob".into(), Role::Admin)]);

    // Removal ends sessions; a sign-out ends one; the purge drops the expired.
    store.put_session(&hash(6), &session("ann", NOW + 5 * HOUR), 2).unwrap();
    store.put_session(&hash(7), &session("bob", NOW + HOUR), 2).unwrap();
    store.put_session(&hash(8), &session("bob", NOW + 5 * HOUR), 2).unwrap();
    assert_eq!(who(store, 3, NOW), None, "ann's third ended her one closest to expiry");
    assert_eq!(store.session_count().unwrap(), 4);
    store.remove_session(&hash(8)).unwrap();
    assert_eq!(who(store, 8, NOW), None);
    assert_eq!(store.remove_expired(NOW + HOUR).unwrap(), 2, "bob's 7 went, at its instant");
    assert_eq!(who(store, 7, NOW), None);
    assert_eq!(who(store, 2, NOW), Some(("ann".into(), Role::Viewer)));
    assert!(store.remove("ann").unwrap());
    assert!(!store.remove("ann").unwrap());
    assert_eq!((who(store, 2, NOW), who(store, 6, NOW)), (None, None), "a removed user's sessions end");
    assert_eq!(store.session_count().unwrap(), 0);
    assert_eq!(store.insert_first(&record("eve", Role::Admin)).unwrap(), Added::Taken, "bob remains");

    // Device keys: replaced, capped, revoked, listed by id.
    assert_eq!(store.put_device_key("kitchen", &hash(10), 2).unwrap(), Added::New);
    assert_eq!(store.put_device_key("Attic", &hash(11), 2).unwrap(), Added::New);
    assert_eq!(store.put_device_key("garage", &hash(12), 2).unwrap(), Added::Full);
    assert_eq!(store.device_key("garage").unwrap(), None);
    assert_eq!(store.put_device_key("kitchen", &hash(13), 2).unwrap(), Added::Replaced, "at the cap");
    assert_eq!(store.device_key("kitchen").unwrap(), Some(hash(13)));
    assert_eq!(store.device_key_ids().unwrap(), ["Attic", "kitchen"]);
    assert_eq!(
        store.device_key_hashes().unwrap(),
        [("Attic".into(), hash(11)), ("kitchen".into(), hash(13))]
    );
    assert!(store.remove_device_key("Attic").unwrap());
    assert!(!store.remove_device_key("Attic").unwrap());
    assert_eq!(store.put_device_key("garage", &hash(12), 2).unwrap(), Added::New, "a place came free");
    assert_eq!(store.device_key_ids().unwrap(), ["garage", "kitchen"]);
}

#[test]
fn the_redb_store_keeps_users_sessions_and_keys() {
    check_users_sessions_and_keys(&UserDb::in_memory().unwrap());
}

#[test]
fn the_postgres_store_keeps_users_sessions_and_keys_as_redb_does() {
    let pg = Postgres::start();
    let store = open(&pg);
    let version = store.device_keys_version().unwrap();
    check_users_sessions_and_keys(&store);
    // Five key writes changed something (the refused one did not count).
    assert_eq!(store.device_keys_version().unwrap(), version + 5);
    // Opened again (another node, or after a restart): all of it is there.
    let again = open(&pg);
    assert_eq!(names(&again), [("bob".into(), Role::Admin)]);
    assert_eq!(again.device_key("kitchen").unwrap(), Some(hash(13)));
}

#[test]
fn two_nodes_demoting_or_removing_the_last_two_admins_at_once_leave_one() {
    let pg = Postgres::start();
    let nodes = [Arc::new(open(&pg)), Arc::new(open(&pg))];
    let first = &nodes[0];
    first.insert_first(&record("ann", Role::Admin)).unwrap();
    first.insert_new(&record("bob", Role::Admin), 10).unwrap();
    first.insert_new(&record("val", Role::Viewer), 10).unwrap();
    for round in 0..40 {
        // Even rounds demote, odd ones remove; node 0 acts on ann, node 1 on bob.
        let remove = round % 2 == 1;
        let barrier = Arc::new(Barrier::new(2));
        let racers: Vec<_> = ["ann", "bob"]
            .into_iter()
            .zip(nodes.iter().cloned())
            .map(|(name, node)| {
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    let role = if remove { None } else { Some(Role::Viewer) };
                    node.change_keeping_an_admin(name, role).unwrap()
                })
            })
            .collect();
        let mut outcomes: Vec<Change> = racers.into_iter().map(|r| r.join().unwrap()).collect();
        outcomes.sort_by_key(|c| *c as u8);
        assert_eq!(outcomes, [Change::Done, Change::LastAdmin], "round {round}");
        let admins: Vec<String> =
            names(&*nodes[1]).into_iter().filter(|(_, r)| *r == Role::Admin).map(|(n, _)| n).collect();
        assert_eq!(admins.len(), 1, "round {round}: exactly one admin is left: {admins:?}");
        // Both admins again for the next round.
        for name in ["ann", "bob"] {
            first.put(&record(name, Role::Admin), 10).unwrap();
        }
    }
}

#[test]
fn two_nodes_adding_past_a_cap_at_once_store_one() {
    let pg = Postgres::start();
    let nodes = [Arc::new(open(&pg)), Arc::new(open(&pg))];
    nodes[0].insert_first(&record("ann", Role::Admin)).unwrap();
    for round in 0..20 {
        // Users: one place left under a cap of round + 2.
        let cap = round + 2;
        let barrier = Arc::new(Barrier::new(2));
        let racers: Vec<_> = (0..2)
            .map(|n| {
                let (node, barrier) = (nodes[n].clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    let user = node.insert_new(&record(&format!("u{round}-{n}"), Role::Viewer), cap).unwrap();
                    let key =
                        node.put_device_key(&format!("d{round}-{n}"), &hash(n as u8), round + 1).unwrap();
                    (user, key)
                })
            })
            .collect();
        let outcomes: Vec<(Added, Added)> = racers.into_iter().map(|r| r.join().unwrap()).collect();
        let users: Vec<Added> = outcomes.iter().map(|o| o.0).collect();
        let keys: Vec<Added> = outcomes.iter().map(|o| o.1).collect();
        assert!(users.contains(&Added::New) && users.contains(&Added::Full), "round {round}: {users:?}");
        assert!(keys.contains(&Added::New) && keys.contains(&Added::Full), "round {round}: {keys:?}");
        assert_eq!(nodes[1].count().unwrap(), cap as u64);
        assert_eq!(nodes[1].device_key_ids().unwrap().len(), round + 1);
    }
}

#[test]
fn a_user_with_sessions_on_two_nodes_keeps_only_the_cap() {
    let pg = Postgres::start();
    let nodes = [Arc::new(open(&pg)), Arc::new(open(&pg))];
    nodes[0].insert_first(&record("ann", Role::Admin)).unwrap();
    let racers: Vec<_> = (0..2u8)
        .map(|n| {
            let node = nodes[usize::from(n)].clone();
            std::thread::spawn(move || {
                for i in 0..40u8 {
                    let token = n * 100 + i;
                    node.put_session(&hash(token), &session("ann", NOW + i64::from(token)), 5).unwrap();
                }
            })
        })
        .collect();
    racers.into_iter().for_each(|r| r.join().unwrap());
    assert_eq!(nodes[0].session_count().unwrap(), 5, "signing in beyond the cap on two nodes keeps 5");
    for token in [135, 136, 137, 138, 139] {
        assert!(who(&*nodes[1], token, NOW).is_some(), "the 5 furthest from expiry remain: {token}");
    }
    // A session for a user that is gone is not kept.
    nodes[1].put_session(&hash(250), &session("nobody", NOW + HOUR), 5).unwrap();
    assert_eq!(nodes[0].session_count().unwrap(), 5);
}

fn config() -> AuthConfig {
    AuthConfig { open: false, session_days: 7, secure_cookies: false, setup_token: Default::default() }
}

/// One node's `Auth` on the shared database.
fn node(pg: &Postgres, setup_token: &str) -> Arc<Auth> {
    let config = AuthConfig { setup_token: server::secret::Secret::new(setup_token), ..config() };
    Arc::new(Auth::new(open(pg), config).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_on_one_node_is_good_on_the_other_and_its_end_is_seen_at_once() {
    let pg = Postgres::start();
    let (a, b) = (node(&pg, "setup-a"), node(&pg, "setup-b"));
    assert!(a.access(None).setup_needed && b.access(None).setup_needed);
    let mut b_events = b.events();
    let ann = a.setup("setup-a", "ann", "correct horse").unwrap();
    // Setup on A closes B at once (B read it through), and B's connections hear of it.
    assert!(!b.access(None).open, "the other node requires sign-in at once");
    assert_eq!(b_events.try_recv().unwrap(), AuthEvent::SignInRequired);
    assert_eq!(b.setup_token(), None);
    assert!(b.setup("setup-b", "eve", "correct horse").is_err(), "no second first admin");
    let admin = SessionUser { name: "ann".into(), role: Role::Admin };
    assert_eq!(b.session(&ann), Some(admin.clone()), "a session made on A is good on B");

    // Signed out on A: refused on B at the next request.
    let second = b.login("ann", "correct horse", PEER).await.unwrap();
    assert_eq!(a.session(&second), Some(admin.clone()));
    a.logout(&second);
    assert_eq!(b.session(&second), None, "a sign-out on A is seen on B at once");
    assert_eq!(b.session(&ann), Some(admin.clone()), "only that session");

    // A viewer demoted, then a password change on B: A sees both at once.
    a.add_user("val", "viewer pass", Role::Admin).unwrap();
    let val = a.login("val", "viewer pass", PEER).await.unwrap();
    telemetry::Accounts::set_role(&*b, "ann", "val", Role::Viewer).unwrap();
    assert_eq!(a.session(&val).map(|u| u.role), Some(Role::Viewer));
    let fresh = b.change_password("ann", "correct horse", "battery staple", PEER).await.unwrap();
    assert_eq!(a.session(&ann), None, "a password change on B ends A's sessions of that user");
    assert_eq!(a.session(&fresh), Some(admin));
    assert!(a.login("ann", "correct horse", PEER).await.is_err());
    assert!(a.login("ann", "battery staple", PEER).await.is_ok());

    // The user cap is one count for both nodes.
    assert_eq!(a.users().unwrap().len(), b.users().unwrap().len());
}

#[test]
fn a_device_key_revoked_on_one_node_is_refused_on_the_other_within_the_bound() {
    let pg = Postgres::start();
    let (a, b) = (node(&pg, ""), node(&pg, ""));
    a.add_user("ann", "correct horse", Role::Admin).unwrap();
    let key = a.new_device_key("dev1").unwrap();
    // B learns of the new key within the bound.
    let deadline = Instant::now() + KEYS_FRESH * 5;
    let hash = loop {
        if let Some(hash) = b.check_device_key("dev1", key.as_bytes()) {
            break hash;
        }
        assert!(Instant::now() < deadline, "B never learnt of A's key");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut b_events = b.events();
    assert!(a.revoke_device_key("dev1").unwrap());
    let revoked = Instant::now();
    while b.device_key_current("dev1", &hash) {
        assert!(revoked.elapsed() < KEYS_FRESH * 3, "B still takes the revoked key");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The bound, and a query's time on a busy machine.
    assert!(revoked.elapsed() <= KEYS_FRESH + Duration::from_secs(1), "within the bound");
    assert!(b.check_device_key("dev1", key.as_bytes()).is_none());
    assert_eq!(
        b_events.try_recv().unwrap(),
        AuthEvent::DeviceKey("dev1".into()),
        "B announces it, so its connections with the old key end"
    );
    assert_eq!(b.device_keys().unwrap(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_survives_kill_9_of_the_database() {
    let mut pg = Postgres::start();
    let auth = node(&pg, "");
    auth.add_user("ann", "correct horse", Role::Admin).unwrap();
    let token = auth.login("ann", "correct horse", PEER).await.unwrap();
    // Acknowledged (the cookie would be on its way): now the database dies.
    let pg = tokio::task::spawn_blocking(move || {
        pg.kill9();
        pg.restart();
        pg
    })
    .await
    .unwrap();
    let again = node(&pg, "");
    assert_eq!(again.session(&token), Some(SessionUser { name: "ann".into(), role: Role::Admin }));
    // The first node's pool finds its connections gone and makes new ones.
    let deadline = Instant::now() + Duration::from_secs(15);
    while auth.session(&token).is_none() {
        assert!(Instant::now() < deadline, "the first node never read the session again");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop((auth, again));
    tokio::task::spawn_blocking(move || drop(pg)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_s_caps_are_counted_in_the_database_across_nodes() {
    use telemetry::accounts::{MAX_DEVICE_KEYS, MAX_USERS};
    use telemetry::{AccountError, Accounts};
    let pg = Postgres::start();
    let (a, b) = (node(&pg, ""), node(&pg, ""));
    a.add_user("ann", "correct horse", Role::Admin).unwrap();
    // One place left under each cap, filled in directly.
    let (client, connection) = tokio_postgres::connect(&pg.url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let users = (MAX_USERS - 2) as i32;
    let keys = (MAX_DEVICE_KEYS - 1) as i32;
    client
        .execute(
            "INSERT INTO users SELECT 'u' || g, 'x', 'viewer', 0 FROM generate_series(1, $1) g",
            &[&users],
        )
        .await
        .unwrap();
    client
        .execute(
            "INSERT INTO device_keys SELECT 'd' || g, sha256(g::text::bytea) FROM generate_series(1, $1) g",
            &[&keys],
        )
        .await
        .unwrap();
    let race = |name: &'static str| {
        let (a, b) = (a.clone(), b.clone());
        tokio::task::spawn_blocking(move || {
            let barrier = Arc::new(Barrier::new(2));
            let threads: Vec<_> = [a, b]
                .into_iter()
                .enumerate()
                .map(|(n, node)| {
                    let barrier = barrier.clone();
                    std::thread::spawn(move || {
                        barrier.wait();
                        let id = format!("{name}{n}");
                        if name == "user" {
                            Accounts::add_user(&*node, &id, "long enough", Role::Viewer).err()
                        } else {
                            Accounts::issue_device_key(&*node, &id).err()
                        }
                    })
                })
                .collect();
            let mut errors: Vec<Option<AccountError>> =
                threads.into_iter().map(|t| t.join().unwrap()).collect();
            errors.sort_by_key(Option::is_some);
            errors
        })
    };
    assert_eq!(race("user").await.unwrap(), [None, Some(AccountError::TooManyUsers)]);
    assert_eq!(race("dev").await.unwrap(), [None, Some(AccountError::TooManyKeys)]);
    // Counted in the tables (the lists stop at the caps, so they would not tell).
    let count = |sql: &'static str| {
        let client = &client;
        async move { client.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) as usize }
    };
    assert_eq!(count("SELECT count(*) FROM users").await, MAX_USERS, "one of the two was added");
    assert_eq!(count("SELECT count(*) FROM device_keys").await, MAX_DEVICE_KEYS);
    // Replacing a key at the cap is not adding one.
    assert!(Accounts::issue_device_key(&*b, "d7").unwrap().replaced);
    drop((a, b));
    tokio::task::spawn_blocking(move || drop(pg)).await.unwrap();
}
