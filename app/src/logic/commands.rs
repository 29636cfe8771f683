//! A device's commands as its page shows them: the send form's fields read into a request,
//! the server's list folded with what the live feed brought, and each command's duration and
//! outcome in words.

use std::collections::BTreeMap;

use telemetry::command::{Command, CommandStatus, MAX_PARAMS_BYTES, NewCommand, id_counter};

/// Longest result shown in a row (the whole of it is in the API).
pub const MAX_RESULT_SHOWN: usize = 200;

/// The send form's fields as a request: `params` a JSON object or empty, `timeout_secs` and
/// `ttl_secs` whole numbers of seconds or empty (the server's defaults), `oneway` whether the
/// one-way box was ticked. The server checks the rest.
pub fn new_command(
    method: &str,
    params: &str,
    timeout_secs: &str,
    ttl_secs: &str,
    oneway: bool,
) -> Result<NewCommand, String> {
    let params = params.trim();
    if params.len() > 8 * MAX_PARAMS_BYTES {
        return Err(format!("params are {} bytes; at most {MAX_PARAMS_BYTES}", params.len()));
    }
    let params = match params {
        "" => None,
        text => Some(serde_json::from_str(text).map_err(|e| format!("params are not JSON: {e}"))?),
    };
    let secs = |text: &str, what: &str| match text.trim() {
        "" => Ok(None),
        t => t.parse::<u64>().map(Some).map_err(|_| format!("the {what} is a whole number of seconds")),
    };
    Ok(NewCommand {
        method: method.trim().to_owned(),
        params,
        timeout_secs: secs(timeout_secs, "timeout")?,
        ttl_secs: secs(ttl_secs, "time to live")?,
        oneway,
    })
}

/// How far a command has come: a later state never gives way to an earlier one.
pub fn progress(c: &Command) -> u8 {
    match c.status {
        CommandStatus::Queued => 0,
        CommandStatus::Sent => 1,
        CommandStatus::Delivered => 2,
        _ => 3,
    }
}

/// The listed commands with the ones the feed brought (newer states win; a command made
/// since the list was read is added), newest first, at most `limit`.
pub fn fold(listed: &[Command], live: &BTreeMap<String, Command>, limit: usize) -> Vec<Command> {
    let mut all: BTreeMap<String, Command> = listed.iter().map(|c| (c.id.clone(), c.clone())).collect();
    for (id, c) in live {
        match all.get(id) {
            Some(old) if progress(old) > progress(c) => {}
            _ => {
                all.insert(id.clone(), c.clone());
            }
        }
    }
    let mut out: Vec<Command> = all.into_values().collect();
    // Ids count up per device: newest first is the highest counter first.
    out.sort_by_key(|c| std::cmp::Reverse(id_counter(&c.id).unwrap_or(0)));
    out.truncate(limit);
    out
}

/// Most commands remembered from the feed: a page left open on a busy device keeps the newest.
pub const MAX_REMEMBERED: usize = 200;

/// Remembers a command the feed (or an action's answer) brought, unless a later state of it
/// is already known; beyond [`MAX_REMEMBERED`] the oldest is forgotten.
pub fn remember(live: &mut BTreeMap<String, Command>, command: Command) {
    if live.get(&command.id).is_none_or(|old| progress(old) <= progress(&command)) {
        live.insert(command.id.clone(), command);
    }
    if live.len() > MAX_REMEMBERED
        && let Some(oldest) = live.keys().min_by_key(|id| id_counter(id).unwrap_or(0)).cloned()
    {
        live.remove(&oldest);
    }
}

/// From made to finished, in words ("1.2 s", "3 min 5 s"); empty while under way.
pub fn duration(c: &Command) -> String {
    let Some(ms) = c.finished_at.filter(|_| c.status.is_terminal()).map(|f| (f - c.created_at).max(0)) else {
        return String::new();
    };
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

/// The status as shown: DELIVERED is not claimed where delivery cannot be seen.
pub fn status_text(c: &Command) -> &'static str {
    match c.status {
        CommandStatus::Sent if !c.delivery_observable => "SENT (delivery not observable)",
        s => s.label(),
    }
}

/// The badge's kind: waiting, good, bad or stopped.
pub fn status_class(s: CommandStatus) -> &'static str {
    match s {
        CommandStatus::Queued | CommandStatus::Sent | CommandStatus::Delivered => "pending",
        CommandStatus::Succeeded => "ok",
        CommandStatus::Failed | CommandStatus::Rejected | CommandStatus::TimedOut => "bad",
        CommandStatus::Expired | CommandStatus::Canceled => "stopped",
    }
}

/// The outcome: the result as JSON, the error's code and message, or who canceled it; at
/// most [`MAX_RESULT_SHOWN`] characters (shown as text, never as markup).
pub fn outcome(c: &Command) -> String {
    let text = match (&c.error, &c.result, &c.canceled_by) {
        (Some(e), _, _) => match &e.message {
            Some(m) => format!("{}: {m}", e.code),
            None => e.code.clone(),
        },
        (None, Some(r), _) => r.to_string(),
        (None, None, Some(by)) => format!("canceled by {by}"),
        (None, None, None) => String::new(),
    };
    match text.char_indices().nth(MAX_RESULT_SHOWN) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use telemetry::command::{CommandError, command_id};

    use super::*;

    fn command(counter: u64, status: CommandStatus) -> Command {
        serde_json::from_value(json!({
            "id": command_id(counter), "device": "d1", "method": "identify", "params": {},
            "status": status, "created_at": 1_000, "created_by": "root", "expires_at": 9_000,
            "timeout_ms": 30_000, "delivery_observable": true,
        }))
        .unwrap()
    }

    #[test]
    fn the_form_reads_into_a_request() {
        let new = new_command(" identify ", r#"{"secs": 5}"#, "10", " 600 ", true).unwrap();
        assert_eq!(
            (new.method.as_str(), new.params, new.timeout_secs, new.ttl_secs, new.oneway),
            ("identify", Some(json!({"secs": 5})), Some(10), Some(600), true)
        );
        let empty = new_command("reboot", " ", "", "", false).unwrap();
        assert_eq!(
            (empty.params, empty.timeout_secs, empty.ttl_secs, empty.oneway),
            (None, None, None, false)
        );
        assert!(new_command("m", "{", "", "", false).unwrap_err().starts_with("params are not JSON"));
        assert_eq!(
            new_command("m", "", "ten", "", false).unwrap_err(),
            "the timeout is a whole number of seconds"
        );
        assert_eq!(
            new_command("m", "", "", "1.5", false).unwrap_err(),
            "the time to live is a whole number of seconds"
        );
        assert!(new_command("m", &"x".repeat(9000), "", "", false).unwrap_err().contains("at most 1024"));
    }

    #[test]
    fn live_news_folds_over_the_list_newest_first() {
        let listed = vec![command(2, CommandStatus::Sent), command(1, CommandStatus::Succeeded)];
        let mut live = BTreeMap::new();
        remember(&mut live, command(2, CommandStatus::Succeeded));
        // An older state arriving late does not undo a newer one.
        remember(&mut live, command(2, CommandStatus::Delivered));
        remember(&mut live, command(33, CommandStatus::Queued));
        let shown = fold(&listed, &live, 50);
        let ids: Vec<_> = shown.iter().map(|c| (c.id.as_str(), c.status)).collect();
        assert_eq!(
            ids,
            [("11", CommandStatus::Queued), ("2", CommandStatus::Succeeded), ("1", CommandStatus::Succeeded)]
        );
        // The list's later state wins over the feed's earlier one.
        let listed = vec![command(3, CommandStatus::Canceled)];
        let live = BTreeMap::from([(command_id(3), command(3, CommandStatus::Queued))]);
        assert_eq!(fold(&listed, &live, 50)[0].status, CommandStatus::Canceled);
        assert_eq!(fold(&shown, &BTreeMap::new(), 2).len(), 2);
    }

    #[test]
    fn a_page_left_open_remembers_the_newest_only() {
        let mut live = BTreeMap::new();
        for counter in 1..=MAX_REMEMBERED as u64 + 5 {
            remember(&mut live, command(counter, CommandStatus::Queued));
        }
        assert_eq!(live.len(), MAX_REMEMBERED);
        assert!(!live.contains_key(&command_id(5)));
        assert!(
            live.contains_key(&command_id(6)) && live.contains_key(&command_id(MAX_REMEMBERED as u64 + 5))
        );
    }

    #[test]
    fn durations_outcomes_and_statuses_in_words() {
        let mut c = command(1, CommandStatus::Sent);
        assert_eq!(duration(&c), "");
        c.delivery_observable = false;
        assert_eq!(status_text(&c), "SENT (delivery not observable)");
        c.status = CommandStatus::Succeeded;
        c.finished_at = Some(2_250);
        c.result = Some(json!({"blink": "<b>"}));
        assert_eq!((duration(&c).as_str(), outcome(&c).as_str()), ("1.2 s", r#"{"blink":"<b>"}"#));
        c.finished_at = Some(1_000 + 185_000);
        assert_eq!(duration(&c), "3 min 5 s");
        c.status = CommandStatus::Rejected;
        c.error =
            Some(CommandError { code: "unknown_method".into(), message: Some("no such method".into()) });
        assert_eq!(outcome(&c), "unknown_method: no such method");
        assert_eq!(status_class(c.status), "bad");
        c.error = Some(CommandError { code: "x".into(), message: Some("é".repeat(300)) });
        assert_eq!(outcome(&c).chars().count(), MAX_RESULT_SHOWN + 1);
    }
}
