//! A real PostgreSQL for the PostgreSQL store's tests: initdb into a temporary folder and the
//! server on a free loopback port, its socket in that folder. initdb refuses root, so as root
//! both run as the `postgres` user Debian's package makes. Stopped (fast shutdown) when
//! dropped; [`Postgres::kill9`] and [`Postgres::restart`] for crash tests, and
//! [`acknowledged_across_kill_9`] for a writer the database dies under.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Postgres {
    child: Option<Child>,
    bin: PathBuf,
    dir: tempfile::TempDir,
    /// The user the server runs as (uid, gid), when the tests run as root.
    user: Option<(u32, u32)>,
    pub port: u16,
    /// `postgres://postgres@127.0.0.1:PORT/postgres`
    pub url: String,
    /// Settings (`-c name=value`) besides the small defaults.
    settings: Vec<String>,
}

/// The newest installed PostgreSQL's programs.
fn bin_dir() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| bin.join("postgres").exists() && bin.join("initdb").exists())
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/postgres): run `scripts/setup.sh test` \
             (make test does), or `apt-get install postgresql`"
        ),
    }
}

fn id(flag: &str) -> u32 {
    let out = Command::new("id").args([flag, "postgres"]).output().expect("id runs");
    assert!(
        out.status.success(),
        "no `postgres` user to run PostgreSQL as (the postgresql package makes it)"
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().expect("a number")
}

impl Postgres {
    pub fn start() -> Postgres {
        let bin = bin_dir();
        let dir = tempfile::tempdir().unwrap();
        let root = Command::new("id").arg("-u").output().map(|o| o.stdout == b"0\n").unwrap_or(false);
        let user = root.then(|| (id("-u"), id("-g")));
        if let Some((uid, gid)) = user {
            let status = Command::new("chown").arg(format!("{uid}:{gid}")).arg(dir.path()).status().unwrap();
            assert!(status.success(), "chown of the test folder");
        }
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut pg = Postgres {
            child: None,
            bin,
            dir,
            user,
            port,
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            settings: Vec::new(),
        };
        let out = pg
            .command("initdb")
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-instructions", "-D"])
            .arg(pg.data())
            .output()
            .expect("initdb runs");
        assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        pg.launch();
        pg
    }

    /// Started with TLS on, serving this certificate and key (PEM).
    pub fn start_with_tls(cert_pem: &str, key_pem: &str) -> Postgres {
        let mut pg = Postgres::start();
        pg.stop();
        let (cert, key) = (pg.dir.path().join("server.crt"), pg.dir.path().join("server.key"));
        std::fs::write(&cert, cert_pem).unwrap();
        std::fs::write(&key, key_pem).unwrap();
        // PostgreSQL refuses a key others can read; its owner is the server's user.
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        if let Some((uid, gid)) = pg.user {
            std::os::unix::fs::chown(&cert, Some(uid), Some(gid)).unwrap();
            std::os::unix::fs::chown(&key, Some(uid), Some(gid)).unwrap();
        }
        pg.settings = vec![
            "ssl=on".into(),
            format!("ssl_cert_file={}", cert.display()),
            format!("ssl_key_file={}", key.display()),
        ];
        pg.launch();
        pg
    }

    /// Fast shutdown (killed if it takes over 10 s); [`Postgres::restart`] starts it again.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGINT: fast shutdown.
            let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin.join(program));
        if let Some((uid, gid)) = self.user {
            command.uid(uid).gid(gid);
        }
        command.env_remove("PGDATA").current_dir(self.dir.path());
        command
    }

    fn launch(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log()).unwrap();
        let child = self
            .command("postgres")
            .arg("-D")
            .arg(self.data())
            .args(["-p", &self.port.to_string(), "-c", "listen_addresses=127.0.0.1", "-k"])
            .arg(self.dir.path())
            // Small: several of these run at once on a small machine.
            .args(["-c", "shared_buffers=16MB", "-c", "max_connections=40"])
            .args(self.settings.iter().flat_map(|s| ["-c", s.as_str()]))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("postgres starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = self
                .command("pg_isready")
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("postgres exited ({status}): {}", self.log_text());
            }
            assert!(Instant::now() < deadline, "postgres not ready in 30 s: {}", self.log_text());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }

    pub fn folder(&self) -> &Path {
        self.dir.path()
    }

    /// SIGKILL to the postmaster and every backend at once, as a crash would: nothing is
    /// flushed or shut down cleanly. Returns once all are gone.
    pub fn kill9(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let postmaster = child.id();
        let backends = children(postmaster);
        let mut pids: Vec<String> = backends.iter().map(u32::to_string).collect();
        pids.push(postmaster.to_string());
        let _ = Command::new("kill").arg("-9").args(&pids).stderr(Stdio::null()).status();
        child.wait().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while backends.iter().any(|pid| alive(*pid)) {
            assert!(Instant::now() < deadline, "postgres backends alive 30 s after kill -9");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts it again on the same folder and port (crash recovery replays the WAL).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stopped first");
        self.launch();
    }
}

/// Calls `write(round)` for rounds 0, 1, … on a thread of its own, keeping what each call that
/// succeeded (the store acknowledged) returns; once `before` things are kept, kills the database
/// with kill -9 and starts it again. The writer stops at its third failed call (it saw the
/// database go). Returns what was acknowledged, in order. Blocking: an async test calls it in
/// `tokio::task::block_in_place`, its `write` driving the store with `Handle::block_on`.
pub fn acknowledged_across_kill_9<T: Send + 'static, E>(
    pg: &mut Postgres,
    before: usize,
    mut write: impl FnMut(i64) -> Result<Vec<T>, E> + Send + 'static,
) -> Vec<T> {
    let acked: Arc<Mutex<Vec<T>>> = Arc::default();
    let writer = {
        let acked = acked.clone();
        std::thread::spawn(move || {
            let mut failures = 0;
            for round in 0..100_000 {
                match write(round) {
                    Ok(done) => acked.lock().unwrap().extend(done),
                    Err(_) => {
                        failures += 1;
                        if failures == 3 {
                            return;
                        }
                    }
                }
            }
            panic!("the writer never saw the database go");
        })
    };
    // Killed in the middle of the writes, once some were acknowledged.
    while acked.lock().unwrap().len() < before {
        std::thread::sleep(Duration::from_millis(5));
    }
    pg.kill9();
    pg.restart();
    writer.join().unwrap();
    std::mem::take(&mut *acked.lock().unwrap())
}

/// The processes whose parent is `parent`.
fn children(parent: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| stat(*pid).is_some_and(|(_, ppid)| ppid == parent))
        .collect()
}

/// A process's state letter and parent, from /proc/PID/stat.
fn stat(pid: u32) -> Option<(char, u32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name's closing parenthesis: state, then the parent's pid.
    let mut rest = text.rsplit_once(')')?.1.split_whitespace();
    let state = rest.next()?.chars().next()?;
    Some((state, rest.next()?.parse().ok()?))
}

/// Running, not gone nor a zombie waiting to be reaped.
fn alive(pid: u32) -> bool {
    stat(pid).is_some_and(|(state, _)| state != 'Z' && state != 'X')
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}
