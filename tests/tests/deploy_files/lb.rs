//! The scale profile's load balancer: its HAProxy configuration read as
//! the checks need it (sections, binds, servers, health check, timeouts,
//! what it logs), and stand-in hubs for running the real `haproxy` in
//! front of them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use super::*;

/// Where the HAProxy image reads its configuration.
pub const HAPROXY_CONFIG: &str = "/usr/local/etc/haproxy/haproxy.cfg";

/// The shortest `timeout tunnel` a WebSocket gets: the hub's pings keep a
/// live connection busy well within it.
pub const MIN_TUNNEL: Duration = Duration::from_secs(3600);

/// A section of an HAProxy configuration: `frontend api`, `defaults`, …;
/// its lines as words, comments removed.
#[derive(Debug, Clone)]
pub struct Section {
    pub kind: String,
    pub name: String,
    pub lines: Vec<Vec<String>>,
}

impl Section {
    /// The lines starting with `keyword` (words after it).
    pub fn all<'a>(&'a self, keyword: &'a str) -> impl Iterator<Item = &'a [String]> + 'a {
        self.lines
            .iter()
            .filter(move |l| l.first().is_some_and(|w| w == keyword))
            .map(|l| &l[1..])
    }

    pub fn has(&self, words: &[&str]) -> bool {
        self.lines
            .iter()
            .any(|l| l.len() >= words.len() && l.iter().zip(words).all(|(a, b)| a == b))
    }

    /// `timeout <name> <value>` here.
    pub fn timeout(&self, name: &str) -> Option<Duration> {
        self.all("timeout")
            .find(|w| w.first().is_some_and(|n| n == name))
            .and_then(|w| w.get(1))
            .and_then(|v| haproxy_duration(v))
    }
}

/// An HAProxy duration: a number with us, ms (the default), s, m, h or d.
pub fn haproxy_duration(text: &str) -> Option<Duration> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    Some(match unit {
        "us" => Duration::from_micros(n),
        "" | "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        "d" => Duration::from_secs(n * 86400),
        _ => return None,
    })
}

/// An HAProxy configuration, split into sections.
pub fn parse_haproxy(text: &str) -> Vec<Section> {
    const KINDS: [&str; 8] = [
        "global",
        "defaults",
        "frontend",
        "backend",
        "listen",
        "resolvers",
        "peers",
        "userlist",
    ];
    let mut sections: Vec<Section> = Vec::new();
    for line in text.lines() {
        let words = haproxy_words(line);
        let Some(first) = words.first() else {
            continue;
        };
        if KINDS.contains(&first.as_str()) {
            sections.push(Section {
                kind: first.clone(),
                name: words.get(1).cloned().unwrap_or_default(),
                lines: Vec::new(),
            });
        } else if let Some(section) = sections.last_mut() {
            section.lines.push(words);
        }
    }
    sections
}

/// A line's words: a `#` at the start of a word starts a comment; double
/// quotes keep spaces (and are removed).
fn haproxy_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            '#' if !quoted && !any => break,
            c if c.is_whitespace() && !quoted => {
                if any {
                    words.push(std::mem::take(&mut word));
                    any = false;
                }
            }
            c => {
                word.push(c);
                any = true;
            }
        }
    }
    if any {
        words.push(word);
    }
    words
}

/// A `server` of a backend: name, address and its options with the
/// backend's `default-server` options before them.
#[derive(Debug, Clone)]
pub struct Server {
    pub name: String,
    pub address: String,
    pub options: Vec<String>,
}

pub fn servers(backend: &Section) -> Vec<Server> {
    let defaults: Vec<String> = backend
        .all("default-server")
        .flat_map(|w| w.iter().cloned())
        .collect();
    backend
        .all("server")
        .filter(|w| w.len() >= 2)
        .map(|w| Server {
            name: w[0].clone(),
            address: w[1].clone(),
            options: defaults.iter().chain(&w[2..]).cloned().collect(),
        })
        .collect()
}

/// The port of a `bind` address (`:8080`, `*:8080`, `0.0.0.0:8080`).
pub fn bind_port(bind: &[String]) -> Option<String> {
    bind.first()
        .and_then(|a| a.rsplit_once(':'))
        .map(|(_, port)| port.to_owned())
}

/// The scale profile's balancers: services mounting an HAProxy
/// configuration, with that configuration's path on the host.
pub fn balancers(compose: &Compose) -> Vec<(Service, PathBuf)> {
    compose
        .services()
        .into_iter()
        .filter_map(|s| {
            let config = s
                .bind_mounts(&compose.dir)
                .into_iter()
                .find(|(_, target)| target == HAPROXY_CONFIG)
                .map(|(source, _)| source)?;
            Some((s, config))
        })
        .collect()
}

/// The container ports on which a balancer serves the hubs' API: the binds
/// of frontends (and listens) whose backend has servers.
pub fn api_ports(sections: &[Section]) -> Vec<String> {
    let backends_with_servers: BTreeSet<&str> = sections
        .iter()
        .filter(|s| s.kind == "backend" && !servers(s).is_empty())
        .map(|s| s.name.as_str())
        .collect();
    sections
        .iter()
        .filter(|s| {
            (s.kind == "listen" && !servers(s).is_empty())
                || (s.kind == "frontend"
                    && s.all("default_backend")
                        .chain(s.all("use_backend"))
                        .any(|w| {
                            w.first()
                                .is_some_and(|b| backends_with_servers.contains(b.as_str()))
                        }))
        })
        .flat_map(|s| s.all("bind").filter_map(bind_port).collect::<Vec<_>>())
        .collect()
}

/// What a balancer in front of the hubs must do, read from its
/// configuration: forward to exactly the hubs `expected` (service name →
/// API port) and check their /readyz; pass WebSockets and keep them open
/// (`timeout tunnel`); never buffer request bodies; never log a request's
/// path or URI as sent (the original client's token is in it).
pub fn check_haproxy(
    service: &str,
    sections: &[Section],
    expected: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let at = format!("lb service {service} (haproxy.cfg)");
    let defaults: Vec<&Section> = sections.iter().filter(|s| s.kind == "defaults").collect();
    let setting = |section: &Section, words: &[&str]| {
        section.has(words) || defaults.iter().any(|d| d.has(words))
    };
    let backends: Vec<&Section> = sections
        .iter()
        .filter(|s| (s.kind == "backend" || s.kind == "listen") && !servers(s).is_empty())
        .collect();
    if backends.is_empty() {
        problems.push(format!("{at}: no backend with servers"));
    }
    let mut forwarded = BTreeSet::new();
    for backend in &backends {
        let mode_tcp = setting(backend, &["mode", "tcp"]) && !backend.has(&["mode", "http"]);
        if mode_tcp {
            problems.push(format!(
                "{at}: backend {} is in tcp mode: no /readyz check, no per-request balancing",
                backend.name
            ));
        }
        let checks_readyz = backend.lines.iter().any(|l| {
            (l.starts_with(&["http-check".to_owned(), "send".to_owned()])
                || l.starts_with(&["option".to_owned(), "httpchk".to_owned()]))
                && l.iter().any(|w| w == "/readyz")
        });
        if !checks_readyz {
            problems.push(format!(
                "{at}: backend {} does not check the hubs' /readyz (`option httpchk` and \
                 `http-check send meth GET uri /readyz`): a hub without its database or store \
                 would still get requests",
                backend.name
            ));
        }
        for server in servers(backend) {
            let (host, port) = split_host_port(&server.address);
            if !server.options.iter().any(|o| o == "check") {
                problems.push(format!(
                    "{at}: server {} is never checked (`check`)",
                    server.name
                ));
            }
            match expected.get(&host) {
                None => problems.push(format!(
                    "{at}: server {} forwards to {}, which is no hub of the profile \
                     ({:?})",
                    server.name,
                    server.address,
                    expected.keys().collect::<Vec<_>>()
                )),
                Some(api) if *api != port => problems.push(format!(
                    "{at}: server {} forwards to {}, but {host} serves its API on port {api}",
                    server.name, server.address
                )),
                Some(_) => {
                    forwarded.insert(host);
                }
            }
        }
    }
    for hub in expected.keys() {
        if !forwarded.contains(hub) {
            problems.push(format!(
                "{at}: the balancer does not forward to {hub}, a hub of the profile"
            ));
        }
    }
    for section in sections
        .iter()
        .filter(|s| ["defaults", "frontend", "backend", "listen"].contains(&s.kind.as_str()))
    {
        let what = format!("{} {}", section.kind, section.name);
        let what = what.trim_end();
        if section.has(&["option", "http-buffer-request"]) {
            problems.push(format!(
                "{at}: {what} has `option http-buffer-request`: uploads would be held in the \
                 balancer before a hub sees them"
            ));
        }
        if section.has(&["option", "httplog"]) && !section.all("log-format").any(|_| true) {
            problems.push(format!(
                "{at}: {what} has `option httplog`, which logs the request line: the original \
                 client's token is in its path (/t/<token>/…); use a log-format without it"
            ));
        }
        for format in section.all("log-format") {
            let format = format.join(" ");
            for leak in ["%r", "%HU", "%HP", "%HPO", "%HQ", "[path", "[url", "[pathq"] {
                if format.contains(leak) {
                    problems.push(format!(
                        "{at}: {what}: log-format logs {leak}: the original client's token is in \
                         the path (/t/<token>/…)"
                    ));
                }
            }
        }
    }
    // Timeouts: each proxy's own, else the defaults'.
    for backend in &backends {
        let timeout = |name: &str| {
            backend
                .timeout(name)
                .or_else(|| defaults.iter().rev().find_map(|d| d.timeout(name)))
        };
        match timeout("tunnel") {
            Some(t) if t >= MIN_TUNNEL => {}
            other => problems.push(format!(
                "{at}: backend {}: `timeout tunnel` is {other:?}: a WebSocket (GET /v1/ws) \
                 would be cut after that much quiet; give it at least {MIN_TUNNEL:?} (the hub \
                 pings)",
                backend.name
            )),
        }
        for name in ["connect", "client", "server"] {
            if timeout(name).is_none() {
                problems.push(format!(
                    "{at}: backend {}: no `timeout {name}`",
                    backend.name
                ));
            }
        }
    }
    problems
}

// ----------------------------------------------------------------------
// Stand-in hubs
// ----------------------------------------------------------------------

/// A request a stand-in hub received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: u64,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A stand-in hub on 127.0.0.1: `/readyz` answers 200 (or 503 once made
/// unready); a WebSocket upgrade gets 101, a greeting naming the hub, then
/// an echo of whatever comes; any other request gets 200 and
/// `<name> <method> <path> <body bytes>`. It records what it received and,
/// as it arrives, how many body bytes.
pub struct StandIn {
    pub name: String,
    pub addr: SocketAddr,
    pub ready: Arc<AtomicBool>,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    /// Body bytes received so far, all requests together.
    pub body_bytes: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl StandIn {
    pub async fn start(name: &str) -> StandIn {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a stand-in hub");
        let addr = listener.local_addr().expect("its address");
        let ready = Arc::new(AtomicBool::new(true));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let body_bytes = Arc::new(AtomicU64::new(0));
        let state = (
            name.to_owned(),
            Arc::clone(&ready),
            Arc::clone(&seen),
            Arc::clone(&body_bytes),
        );
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = state.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, state).await;
                });
            }
        });
        StandIn {
            name: name.to_owned(),
            addr,
            ready,
            seen,
            body_bytes,
            task,
        }
    }

    /// The requests it received other than /readyz.
    pub fn requests(&self) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.path != "/readyz")
            .cloned()
            .collect()
    }
}

type StandInState = (
    String,
    Arc<AtomicBool>,
    Arc<Mutex<Vec<Seen>>>,
    Arc<AtomicU64>,
);

async fn serve(stream: TcpStream, state: StandInState) -> std::io::Result<()> {
    let (name, ready, seen, body_bytes) = state;
    let mut stream = BufReader::new(stream);
    loop {
        let Some((method, path, headers)) = read_head(&mut stream).await? else {
            return Ok(());
        };
        let mut request = Seen {
            method: method.clone(),
            path: path.clone(),
            headers,
            body: 0,
        };
        if path == "/readyz" {
            seen.lock().unwrap().push(request);
            let (status, body) = if ready.load(Ordering::SeqCst) {
                ("200 OK", "ready")
            } else {
                ("503 Service Unavailable", "not ready")
            };
            respond(stream.get_mut(), status, body).await?;
            continue;
        }
        if request
            .header("upgrade")
            .is_some_and(|u| u.eq_ignore_ascii_case("websocket"))
        {
            seen.lock().unwrap().push(request);
            // RFC 6455's example key and its accept value: the stand-in
            // does not hash (the tests send that key).
            let head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                        Connection: Upgrade\r\n\
                        Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
            let stream = stream.get_mut();
            stream.write_all(head.as_bytes()).await?;
            stream
                .write_all(format!("hello from {name}\n").as_bytes())
                .await?;
            let mut buf = [0u8; 4096];
            loop {
                let n = stream.read(&mut buf).await?;
                if n == 0 {
                    return Ok(());
                }
                stream.write_all(&buf[..n]).await?;
            }
        }
        // The body: Content-Length, or chunked.
        let chunked = request
            .header("transfer-encoding")
            .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"));
        let mut buf = vec![0u8; 64 * 1024];
        if chunked {
            loop {
                let mut size_line = String::new();
                stream.read_line(&mut size_line).await?;
                let size =
                    u64::from_str_radix(size_line.trim().split(';').next().unwrap_or_default(), 16)
                        .map_err(|e| {
                            std::io::Error::other(format!("chunk size {size_line:?}: {e}"))
                        })?;
                let mut left = size;
                while left > 0 {
                    let want = buf.len().min(left as usize);
                    let n = stream.read(&mut buf[..want]).await?;
                    if n == 0 {
                        return Ok(());
                    }
                    left -= n as u64;
                    request.body += n as u64;
                    body_bytes.fetch_add(n as u64, Ordering::SeqCst);
                }
                let mut crlf = String::new();
                stream.read_line(&mut crlf).await?;
                if size == 0 {
                    break;
                }
            }
        } else {
            let mut left: u64 = request
                .header("content-length")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while left > 0 {
                let want = buf.len().min(left as usize);
                let n = stream.read(&mut buf[..want]).await?;
                if n == 0 {
                    return Ok(());
                }
                left -= n as u64;
                request.body += n as u64;
                body_bytes.fetch_add(n as u64, Ordering::SeqCst);
            }
        }
        let body = format!("{name} {method} {path} {}", request.body);
        seen.lock().unwrap().push(request);
        respond(stream.get_mut(), "200 OK", &body).await?;
    }
}

type Head = (String, String, Vec<(String, String)>);

/// A request line and headers; `None` at the end of the connection.
pub async fn read_head<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
) -> std::io::Result<Option<Head>> {
    let mut line = String::new();
    if reader.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    Ok(Some((method, path, headers)))
}

async fn respond(stream: &mut TcpStream, status: &str, body: &str) -> std::io::Result<()> {
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await
}

// ----------------------------------------------------------------------
// The real HAProxy
// ----------------------------------------------------------------------

/// The `haproxy` binary: `SF_HAPROXY_BIN`, or on `PATH`, or where Debian
/// installs it (/usr/sbin, not on a non-root user's `PATH`).
pub fn haproxy_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("SF_HAPROXY_BIN") {
        return Some(PathBuf::from(path));
    }
    sf_e2e::services::find_on_path("haproxy").or_else(|| {
        ["/usr/sbin/haproxy", "/usr/local/sbin/haproxy"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
    })
}

/// `config` with its binds on 127.0.0.1 (container port → local port) and
/// its servers at local addresses (`host:port` → address): the compose
/// configuration, runnable outside the compose network.
pub fn localized(
    config: &str,
    binds: &BTreeMap<String, u16>,
    servers: &BTreeMap<String, SocketAddr>,
) -> Result<String, String> {
    let mut out = String::new();
    for line in config.lines() {
        let words = haproxy_words(line);
        let indent = &line[..line.len() - line.trim_start().len()];
        let rewritten = match words.first().map(String::as_str) {
            Some("bind") => {
                let port = bind_port(&words[1..])
                    .ok_or_else(|| format!("a bind without a port: {line}"))?;
                let local = binds
                    .get(&port)
                    .ok_or_else(|| format!("no local port for bind :{port}"))?;
                let mut w = words.clone();
                w[1] = format!("127.0.0.1:{local}");
                Some(w.join(" "))
            }
            Some("server") if words.len() >= 3 => {
                let local = servers
                    .get(&words[2])
                    .ok_or_else(|| format!("no stand-in for server {}", words[2]))?;
                let mut w = words.clone();
                w[2] = local.to_string();
                Some(w.join(" "))
            }
            _ => None,
        };
        match rewritten {
            Some(text) => out.push_str(&format!("{indent}{text}\n")),
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    Ok(out)
}

/// An HTTP/1.1 response read from `stream`: its status and its body
/// (Content-Length).
pub async fn raw_response(stream: &mut BufReader<TcpStream>) -> std::io::Result<(u16, String)> {
    let mut status = String::new();
    stream.read_line(&mut status).await?;
    let code = status
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line).await? == 0 {
            break;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await?;
    Ok((code, String::from_utf8_lossy(&body).into_owned()))
}

#[test]
fn haproxy_config_is_read_as_haproxy_reads_it() {
    let sections = parse_haproxy(
        "global\n  log stdout format raw local0\n# a comment\ndefaults\n  timeout tunnel 1h # x\n\
         backend b\n  default-server check inter 2s\n  server one one:8080\n  \
         log-format \"%ci %[var(txn.x)]\"\n",
    );
    assert_eq!(
        sections.iter().map(|s| s.kind.as_str()).collect::<Vec<_>>(),
        ["global", "defaults", "backend"]
    );
    assert_eq!(
        sections[1].timeout("tunnel"),
        Some(Duration::from_secs(3600))
    );
    let server = &servers(&sections[2])[0];
    assert_eq!(
        (server.name.as_str(), server.address.as_str()),
        ("one", "one:8080")
    );
    assert!(server.options.contains(&"check".to_owned()));
    assert_eq!(
        sections[2].all("log-format").next().unwrap(),
        ["%ci %[var(txn.x)]"]
    );
    assert_eq!(haproxy_duration("30000"), Some(Duration::from_secs(30)));
    assert_eq!(haproxy_duration("5m"), Some(Duration::from_secs(300)));
    assert_eq!(bind_port(&[":8080".to_owned()]).as_deref(), Some("8080"));
}
