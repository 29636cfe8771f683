//! Rule templates on the alarm rules page, as the server renders it (no JavaScript needed): the
//! page links each template, and a template's link opens the editor filled in with it.

mod common;

use common::*;

/// The value of the form's input named `name`, as rendered.
fn field(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\""))?;
    let start = html[..at].rfind('<')?;
    let tag = &html[start..start + html[start..].find('>')?];
    let value = tag.find("value=\"")? + "value=\"".len();
    Some(tag[value..value + tag[value..].find('"')?].to_owned())
}

#[test]
fn a_template_link_opens_the_rule_editor_filled_in() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("t.redb"), &[]);
    let (status, page) = server.get("/alarms/rules");
    assert_eq!(status, 200, "{page}");
    for key in [
        "offline",
        "no_data_intervals",
        "battery_percent",
        "battery_volts",
        "weak_signal",
        "reboot_loop",
        "firmware_drift",
    ] {
        assert!(page.contains(&format!("href=\"/alarms/rules?template={key}#rule-editor\"")), "{key} linked");
    }
    assert_eq!(field(&page, "rule[name]").as_deref(), Some(""), "a new rule's form is empty");

    let (status, weak) = server.get("/alarms/rules?template=weak_signal");
    assert_eq!(status, 200, "{weak}");
    for (name, value) in [
        ("rule[id]", ""),
        ("rule[name]", "Weak signal"),
        ("rule[metric]", "rssi"),
        ("rule[levels][0][value]", "-80"),
        ("rule[clear]", "-75"),
        ("rule[pending]", "10m"),
        ("rule[clear_for]", "5m"),
    ] {
        assert_eq!(field(&weak, name).as_deref(), Some(value), "{name}");
    }
    assert!(
        weak.contains("<option value=\"&lt;\" selected") || weak.contains("<option value=\"<\" selected"),
        "below"
    );

    let (_, offline) = server.get("/alarms/rules?template=offline");
    assert!(offline.contains("<option value=\"offline\" selected"), "the offline kind");
    assert_eq!(field(&offline, "rule[after]").as_deref(), Some("10m"), "after 10 min");

    // The fleet-health kinds.
    let (_, overdue) = server.get("/alarms/rules?template=no_data_intervals");
    assert!(overdue.contains("<option value=\"overdue\" selected"), "the overdue kind");
    assert_eq!(field(&overdue, "rule[count]").as_deref(), Some("3"), "3 intervals");
    let (_, reboots) = server.get("/alarms/rules?template=reboot_loop");
    assert!(reboots.contains("<option value=\"reboot_loop\" selected"), "the reboot-loop kind");
    assert_eq!(field(&reboots, "rule[count]").as_deref(), Some("3"), "3 reboots");
    assert_eq!(field(&reboots, "rule[after]").as_deref(), Some("1h"), "within an hour");
    let (_, drift) = server.get("/alarms/rules?template=firmware_drift");
    assert!(drift.contains("<option value=\"firmware_drift\" selected"), "the firmware kind");
    assert_eq!(field(&drift, "rule[tag]").as_deref(), Some(""), "compared across all it watches");

    let (status, unknown) = server.get("/alarms/rules?template=%3Cscript%3E");
    assert_eq!(status, 200);
    assert_eq!(field(&unknown, "rule[name]").as_deref(), Some(""), "an unknown one: a new rule");
    assert!(!unknown.contains("<script>"), "nothing from the address is written unescaped");
}
