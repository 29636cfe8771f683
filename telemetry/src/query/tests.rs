//! The query language against examples, its own written form, and a naive filter.

use std::borrow::Cow;
use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

/// A device as the tests see it: what a query reads, nothing else.
#[derive(Debug, Clone)]
struct Dev {
    id: String,
    name: Option<String>,
    health: Health,
    tags: BTreeMap<String, String>,
    fw: Option<String>,
    metrics: BTreeMap<String, f64>,
    last_seen: Millis,
}

impl Facts for Dev {
    fn id(&self) -> &str {
        &self.id
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn health(&self, _now: Millis) -> Health {
        self.health
    }
    fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }
    fn attribute(&self, key: &str) -> Option<Cow<'_, str>> {
        (key == "fw").then_some(()).and(self.fw.as_deref()).map(Cow::Borrowed)
    }
    fn metric(&self, name: &str) -> Option<f64> {
        self.metrics.get(name).copied()
    }
    fn last_seen(&self) -> Millis {
        self.last_seen
    }
}

fn dev(id: &str) -> Dev {
    Dev {
        id: id.into(),
        name: None,
        health: Health::Online,
        tags: BTreeMap::new(),
        fw: None,
        metrics: BTreeMap::new(),
        last_seen: 0,
    }
}

fn q(text: &str) -> Query {
    Query::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn err(text: &str) -> (usize, String) {
    let e = Query::parse(text).expect_err(text);
    (e.at, e.message)
}

#[test]
fn the_issue_s_examples_mean_what_they_say() {
    let mut a = dev("a");
    a.tags.insert("site".into(), "greenhouse".into());
    a.fw = Some("1.4.2".into());
    let mut b = a.clone();
    b.id = "b".into();
    b.fw = Some("1.3.9".into());
    let mut c = b.clone();
    c.id = "c".into();
    c.fw = None;
    let mut d = b.clone();
    d.id = "d".into();
    d.tags.insert("site".into(), "barn".into());
    let all = [a, b, c, d];
    let ids = |query: &str| {
        let query = q(query);
        all.iter().filter(|d| query.matches(*d, 0)).map(|d| d.id.as_str()).collect::<Vec<_>>()
    };
    assert_eq!(ids("tag:site=greenhouse fw!=1.4.2"), ["b", "c"], "a device without fw is not on 1.4.2");
    assert_eq!(ids("tag:site=greenhouse"), ["a", "b", "c"]);
    assert_eq!(ids("tag:site=GREEN*"), ["a", "b", "c"], "case is ignored, * is any run");
    assert_eq!(ids("tag:site"), ["a", "b", "c", "d"]);
    assert_eq!(ids("-tag:site"), Vec::<&str>::new());
    assert_eq!(ids("fw:1.4.2 OR tag:site=barn"), ["a", "d"]);
    assert_eq!(ids("(fw:1.4.2 OR tag:site=barn) -id:a"), ["d"]);
    assert_eq!(ids("-(fw:1.4.2 OR tag:site=barn)"), ["b", "c"]);
    assert_eq!(ids(""), ["a", "b", "c", "d"], "empty: every device");
    assert_eq!(ids("attr:fw"), ["a", "b", "d"]);
}

#[test]
fn fields_read_names_health_metrics_and_time() {
    let now = 10 * 3_600_000;
    let mut kitchen = dev("esp-01");
    kitchen.name = Some("Kitchen sensor".into());
    kitchen.metrics.insert("rssi".into(), -85.0);
    kitchen.metrics.insert("battery".into(), 3.2);
    kitchen.last_seen = now - 2 * 3_600_000;
    kitchen.health = Health::Stale;
    let mut hall = dev("esp-02");
    hall.metrics.insert("rssi".into(), -60.0);
    hall.metrics.insert("battery_pct".into(), 80.0);
    hall.last_seen = now - 1_000;
    let all = [kitchen, hall];
    let ids = |query: &str| {
        let query = q(query);
        all.iter().filter(|d| query.matches(*d, now)).map(|d| d.id.as_str()).collect::<Vec<_>>()
    };
    assert_eq!(ids("name:kitchen*"), ["esp-01"]);
    assert_eq!(ids("name:esp-02"), ["esp-02"], "a device without a name is called by its id");
    assert_eq!(ids("name:\"kitchen sensor\""), ["esp-01"]);
    assert_eq!(ids("kitchen"), ["esp-01"], "a bare word: id or name contains it");
    assert_eq!(ids("02"), ["esp-02"]);
    assert_eq!(ids("status:stale"), ["esp-01"]);
    assert_eq!(ids("status!=stale"), ["esp-02"]);
    assert_eq!(ids("rssi<-80"), ["esp-01"]);
    assert_eq!(ids("metric:rssi>=-60"), ["esp-02"]);
    assert_eq!(ids("signal:weak"), ["esp-01"]);
    assert_eq!(ids("signal:good"), ["esp-02"]);
    assert_eq!(ids("battery:low"), ["esp-01"], "3.2 V");
    assert_eq!(ids("battery:ok"), ["esp-02"], "80 %");
    assert_eq!(ids("seen>1h"), ["esp-01"]);
    assert_eq!(ids("seen<30s"), ["esp-02"]);
    assert_eq!(ids("metric:temperature"), Vec::<&str>::new());
    assert_eq!(ids("id:esp-0*"), ["esp-01", "esp-02"]);
}

#[test]
fn mistakes_are_reported_where_they_are() {
    assert_eq!(err("tag:site=greenhouse stauts:stale").0, 20);
    assert!(err("stauts:stale").1.contains("unknown field \"stauts\""));
    assert_eq!(err("status:sleepy"), (7, "status is online, stale, offline or refused".into()));
    assert_eq!(err("rssi<strong").0, 5);
    assert_eq!(err("(a OR b"), (0, "this ( is never closed".into()));
    assert_eq!(err("a b)"), (3, "this ) has no ( before it".into()));
    assert_eq!(err("a OR"), (2, "OR needs a term on each side".into()));
    assert_eq!(err("OR a").0, 0);
    assert_eq!(err("()").1, "empty parentheses");
    assert_eq!(err("name:\"kitchen").0, 5);
    assert_eq!(err("name:").1, "expected a value after :");
    assert_eq!(err("tag:site:greenhouse").0, 4);
    assert_eq!(err("tag:si te=x").0, 7, "a space ends the word: te=x is an unknown field");
    assert_eq!(err("tag:<x>=1").0, 4);
    assert_eq!(err("tag:a=<b>").0, 6);
    assert_eq!(err("seen:1h").0, 4);
    assert_eq!(err("seen>1y").0, 5);
    assert_eq!(err("a - b").0, 2);
    assert_eq!(err("group:a/b").0, 6);
    assert_eq!(
        err("ü:x").1,
        "unknown field \"ü\": use id, name, status, tag:, attr:, metric:, fw, rssi, signal, battery, seen or group:"
    );
    assert_eq!(err("é stauts:x").0, 2, "positions count characters, not bytes");
    let long = "a ".repeat(MAX_QUERY_LEN);
    assert_eq!(err(&long).0, MAX_QUERY_LEN);
    let many = (0..=MAX_TERMS).map(|i| format!("t{i}")).collect::<Vec<_>>().join(" ");
    assert!(err(&many).1.contains("at most 32 terms"));
    let deep = format!("{}a{}", "(".repeat(MAX_DEPTH + 1), ")".repeat(MAX_DEPTH + 1));
    assert_eq!(err(&deep), (MAX_DEPTH, "at most 8 levels of parentheses".into()));
    assert!(Query::parse(&format!("{}a{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH))).is_ok());
}

#[test]
fn groups_are_put_in_and_checked() {
    let groups = |id: &str| match id {
        "greenhouse" => Some("tag:site=greenhouse".to_owned()),
        "broken" => Some("group:greenhouse".to_owned()),
        _ => None,
    };
    let mut a = dev("a");
    a.tags.insert("site".into(), "greenhouse".into());
    let b = dev("b");
    let query = Query::parse_with_groups("group:greenhouse OR id:b", groups).unwrap();
    assert!(query.matches(&a, 0) && query.matches(&b, 0));
    assert!(!Query::parse_with_groups("-group:greenhouse", groups).unwrap().matches(&a, 0));
    let e = Query::parse_with_groups("id:a group:nope", groups).unwrap_err();
    assert_eq!((e.at, e.message.as_str()), (11, "there is no group nope"));
    let lenient = q("group:nope OR id:b").resolve(groups, true).unwrap();
    assert!(!lenient.matches(&a, 0) && lenient.matches(&b, 0), "an unknown group matches nothing");
    assert!(!Query::parse_with_groups("group:broken", groups).unwrap().matches(&a, 0), "no groups in groups");
    assert!(q("tag:site=x fw:1 name:a* -id:b").is_timeless());
    assert!(!q("tag:site=x status:online").is_timeless());
    assert!(!Query::parse_with_groups("group:g", |_| Some("seen>1h".into())).unwrap().is_timeless());

    let group = |q: &str| Group { id: "g".into(), name: "G".into(), query: q.into(), updated: 0 };
    assert_eq!(group("tag:site=x").validate(), Ok(()));
    assert!(group("").validate().unwrap_err().contains("needs a query"));
    assert!(group("group:other").validate().unwrap_err().contains("cannot name another group"));
    assert!(group("stauts:x").validate().unwrap_err().contains("at character 1"));
    assert_eq!(group_id("Greenhouse sensors (north)"), "greenhouse-sensors-north");
    assert_eq!(group_id("!!!"), "group");
}

#[test]
fn patterns_match_as_globs() {
    let p = Pattern::new;
    assert!(p("kitchen*").matches("Kitchen 2"));
    assert!(!p("kitchen*").matches("my kitchen"));
    assert!(p("*kitchen").matches("my kitchen"));
    assert!(p("*it*en*").matches("kitchen"));
    assert!(p("a*a").matches("aa") && !p("a*a").matches("a"));
    assert!(p("*").matches("") && p("**").matches("x"));
    assert!(p("1.4.2").matches("1.4.2") && !p("1.4.2").matches("1.4.20"));
    assert!(p("KÜCHE").matches("küche"));
}

// ---- Properties ----

/// A query as a naive model writes and evaluates it: the slowest obvious way.
#[derive(Debug, Clone)]
enum Spec {
    TagEq(String, String),
    TagHas(String),
    Fw(String),
    Status(Health),
    NamePrefix(String),
    Not(Box<Spec>),
    And(Vec<Spec>),
    Or(Vec<Spec>),
}

impl Spec {
    fn text(&self) -> String {
        match self {
            Spec::TagEq(k, v) => format!("tag:{k}={v}"),
            Spec::TagHas(k) => format!("tag:{k}"),
            Spec::Fw(v) => format!("fw:{v}"),
            Spec::Status(h) => format!("status:{}", h.label()),
            Spec::NamePrefix(p) => format!("name:{p}*"),
            Spec::Not(inner) => format!("-({})", inner.text()),
            Spec::And(all) => all.iter().map(|s| format!("({})", s.text())).collect::<Vec<_>>().join(" "),
            Spec::Or(all) => all.iter().map(|s| format!("({})", s.text())).collect::<Vec<_>>().join(" OR "),
        }
    }

    fn holds(&self, d: &Dev) -> bool {
        match self {
            Spec::TagEq(k, v) => d.tags.get(k) == Some(v),
            Spec::TagHas(k) => d.tags.contains_key(k),
            Spec::Fw(v) => d.fw.as_ref() == Some(v),
            Spec::Status(h) => d.health == *h,
            Spec::NamePrefix(p) => d.name.as_ref().unwrap_or(&d.id).starts_with(p.as_str()),
            Spec::Not(inner) => !inner.holds(d),
            Spec::And(all) => all.iter().all(|s| s.holds(d)),
            Spec::Or(all) => all.iter().any(|s| s.holds(d)),
        }
    }
}

fn health() -> impl Strategy<Value = Health> {
    prop_oneof![Just(Health::Online), Just(Health::Stale), Just(Health::Offline), Just(Health::Refused)]
}

const SITES: [&str; 3] = ["greenhouse", "barn", "house"];
const FWS: [&str; 3] = ["1.4.2", "1.3.9", "1.4.20"];

fn site() -> impl Strategy<Value = String> {
    prop::sample::select(&SITES[..]).prop_map(str::to_owned)
}

fn fw() -> impl Strategy<Value = String> {
    prop::sample::select(&FWS[..]).prop_map(str::to_owned)
}

fn fleet() -> impl Strategy<Value = Vec<Dev>> {
    let device = (
        prop::option::of("[a-c]{1,3}"),
        health(),
        prop::option::of(site()),
        prop::option::of(prop::sample::select(&["1", "2"][..])),
        prop::option::of(fw()),
    )
        .prop_map(|(name, health, site, floor, fw)| {
            let mut d = dev("");
            d.name = name;
            d.health = health;
            d.tags.extend(site.map(|s| ("site".to_owned(), s)));
            d.tags.extend(floor.map(|f| ("floor".to_owned(), f.to_owned())));
            d.fw = fw;
            d
        });
    prop::collection::vec(device, 0..40).prop_map(|mut all| {
        for (i, d) in all.iter_mut().enumerate() {
            d.id = format!("d{i:02}");
        }
        all
    })
}

fn spec() -> impl Strategy<Value = Spec> {
    let leaf = prop_oneof![
        (prop::sample::select(&["site", "floor"][..]), site()).prop_map(|(k, v)| Spec::TagEq(k.into(), v)),
        prop::sample::select(&["site", "floor"][..]).prop_map(|k| Spec::TagHas(k.into())),
        fw().prop_map(Spec::Fw),
        health().prop_map(Spec::Status),
        "[a-c]{1,2}".prop_map(Spec::NamePrefix),
    ];
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|s| Spec::Not(Box::new(s))),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Spec::And),
            prop::collection::vec(inner, 2..4).prop_map(Spec::Or),
        ]
    })
}

fn matching<'a>(query: &Query, fleet: &'a [Dev]) -> Vec<&'a str> {
    fleet.iter().filter(|d| query.matches(*d, 0)).map(|d| d.id.as_str()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Acceptance 5: `tag:site=greenhouse fw!=1.4.2` returns exactly the matching devices.
    #[test]
    fn the_acceptance_filter_returns_exactly_the_matching_devices(fleet in fleet(), s in site(), f in fw()) {
        let query = q(&format!("tag:site={s} fw!={f}"));
        let naive: Vec<&str> = fleet
            .iter()
            .filter(|d| d.tags.get("site") == Some(&s) && d.fw.as_ref() != Some(&f))
            .map(|d| d.id.as_str())
            .collect();
        prop_assert_eq!(matching(&query, &fleet), naive);
    }

    /// Any query built of tags, firmware, status, name prefixes, `-`, `OR` and parentheses
    /// returns what the naive model says, and reads back from its own written form.
    #[test]
    fn queries_return_what_a_naive_filter_does(fleet in fleet(), spec in spec()) {
        let text = spec.text();
        let query = match Query::parse(&text) {
            Ok(query) => query,
            // Deep or long trees are refused, and say so.
            Err(e) => {
                prop_assert!(e.message.contains("at most"), "{}: {}", text, e);
                return Ok(());
            }
        };
        let naive: Vec<&str> = fleet.iter().filter(|d| spec.holds(d)).map(|d| d.id.as_str()).collect();
        prop_assert_eq!(matching(&query, &fleet), naive);
        let again = q(&query.to_string());
        prop_assert_eq!(&again, &query, "{} → {}", text, query);
    }

    /// Whatever is typed, parsing ends with a query or an error inside the text.
    #[test]
    fn any_text_parses_or_says_where(text in "[ a-z:=!<>()\"*.tOR1-]{0,60}|\\PC{0,80}") {
        match Query::parse(&text) {
            Ok(query) => {
                let again = Query::parse(&query.to_string());
                prop_assert!(again.is_ok(), "{:?} → {}", text, query);
            }
            Err(e) => prop_assert!(e.at <= text.chars().count(), "{:?}: {:?}", text, e),
        }
    }
}
