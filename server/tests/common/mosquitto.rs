//! A real Mosquitto for the external-broker tests, on a free loopback port, stopped by PID.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::{ServerProcess, eventually};

pub struct Mosquitto {
    child: Option<Child>,
    pub addr: SocketAddr,
    /// MQTT over TLS, when started with a certificate.
    pub tls_addr: Option<SocketAddr>,
    conf: PathBuf,
    _dir: tempfile::TempDir,
}

impl Mosquitto {
    /// Anonymous access, nothing kept across restarts.
    pub fn start() -> Mosquitto {
        Mosquitto::with_settings("allow_anonymous true\n")
    }

    /// Logins from `password_file` only, and topics as `acl_file` allows.
    pub fn start_secured(password_file: &std::path::Path, acl_file: &std::path::Path) -> Mosquitto {
        Mosquitto::with_settings(&format!(
            "allow_anonymous false\npassword_file {}\nacl_file {}\n",
            password_file.display(),
            acl_file.display()
        ))
    }

    /// Persistence on and no cap on queued messages: what the README asks of users.
    pub fn start_persistent() -> Mosquitto {
        Mosquitto::with_settings(
            "allow_anonymous true\npersistence true\nmax_queued_messages 0\nmax_inflight_messages 100\n",
        )
    }

    /// Anonymous access, plain and over TLS with this certificate and key (PEM files Mosquitto's
    /// own user can read).
    pub fn start_tls(cert: &std::path::Path, key: &std::path::Path) -> Mosquitto {
        let tls_port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut m = Mosquitto::with_settings(&format!(
            "allow_anonymous true\nlistener {tls_port} 127.0.0.1\ncertfile {}\nkeyfile {}\nallow_anonymous true\n",
            cert.display(),
            key.display()
        ));
        let tls_addr = format!("127.0.0.1:{tls_port}").parse().unwrap();
        eventually("mosquitto to listen for TLS", || TcpStream::connect(tls_addr).ok());
        m.tls_addr = Some(tls_addr);
        m
    }

    fn with_settings(extra: &str) -> Mosquitto {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        // Mosquitto started as root drops to its own user, which must be able to save here.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let conf = dir.path().join("mosquitto.conf");
        let text =
            format!("listener {port} 127.0.0.1\npersistence_location {}/\n{extra}", dir.path().display());
        std::fs::write(&conf, text).unwrap();
        let addr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut m = Mosquitto { child: None, addr, tls_addr: None, conf, _dir: dir };
        m.launch();
        m
    }

    fn launch(&mut self) {
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&self.conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto is installed (make test installs it: apt-get install mosquitto)");
        self.child = Some(child);
        eventually("mosquitto to listen", || TcpStream::connect(self.addr).ok());
    }

    /// A clean restart (SIGTERM: Mosquitto writes its persistence file), on the same port.
    pub fn restart(&mut self) {
        if let Some(mut child) = self.child.take() {
            Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
            child.wait().unwrap();
        }
        self.launch();
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The server's environment for ingest from `broker` under a fixed client id.
pub fn external_env(broker: SocketAddr, client_id: &str) -> Vec<(&'static str, String)> {
    vec![
        ("IOT_MQTT_MODE", "external".into()),
        ("IOT_MQTT_HOST", broker.ip().to_string()),
        ("IOT_MQTT_PORT", broker.port().to_string()),
        ("IOT_MQTT_CLIENT_ID", client_id.into()),
    ]
}

/// `Some` once the server reports itself healthy (for an external broker: subscribed).
pub fn subscribed(server: &ServerProcess) -> Option<()> {
    (server.get("/healthz").0 == 200).then_some(())
}
