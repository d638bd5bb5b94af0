//! Test helpers for the Kafka source/sink: a throwaway `tansu` broker per test
//! plus small synchronous rdkafka client helpers (std + rdkafka only).
//!
//! Facts about tansu 0.6.0 (memory storage) these helpers work around:
//! - `ListOffsets` "latest" (`fetch_watermarks`) answers base offset of the LAST
//!   BATCH + 1, not the true end when the last batch holds several records.
//!   The high watermark in Fetch responses is right, so `consume_all` reads to
//!   partition EOF instead of trusting `fetch_watermarks`.
//! - A fetch starting in the middle of a multi-record batch skips the rest of
//!   that batch (and can return later batches twice). `produce` therefore
//!   writes one record per batch (`batch.num.messages=1`), which makes every
//!   offset a batch start; readers should still drop offsets they have passed.
//! - No `EndTxn`: transactions cannot be committed or aborted; an open
//!   transaction blocks `read_committed` readers. Helpers use `read_uncommitted`.
//! - Commit metadata is accepted but never returned by `OffsetFetch`.
//! - Memory storage is lost on restart. `Broker::start_persistent` backs the
//!   broker with S3 storage on a local `moto_server` (python `moto[server]`),
//!   which survives `restart()` (kill -9 + start on the same port).
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::thread::sleep;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

const READY_DEADLINE: Duration = Duration::from_secs(20);
static SEQ: AtomicUsize = AtomicUsize::new(0);

/// Where the tansu binary is: `$TANSU_BIN`, `$HOME/.cache/tansu/install/bin/tansu`,
/// `$HOME/.cache/tansu/0.6.0/bin/tansu`, then `tansu` on PATH.
pub fn tansu_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TANSU_BIN").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Some(p)
        } else {
            // An explicit setting that points nowhere is a setup error, not a skip.
            panic!("TANSU_BIN={} is not a file", p.display())
        };
    }
    if let Some(home) = std::env::var_os("HOME") {
        for rel in [
            ".cache/tansu/install/bin/tansu",
            ".cache/tansu/0.6.0/bin/tansu",
        ] {
            let p = Path::new(&home).join(rel);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    find_on_path("tansu")
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn require_kafka() -> bool {
    std::env::var("ENGINE_REQUIRE_KAFKA").is_ok_and(|v| v == "1")
}

/// None (after printing why) when the test should skip; panics instead when
/// `ENGINE_REQUIRE_KAFKA=1` (CI).
fn unavailable(what: &str) -> Option<Broker> {
    assert!(!require_kafka(), "ENGINE_REQUIRE_KAFKA=1 but {what}");
    eprintln!("skipped: {what}");
    None
}

fn log_dir() -> PathBuf {
    let dir = option_env!("CARGO_TARGET_TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join("tansu-logs");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// A tansu broker child process on a loopback port. Killed and reaped on drop.
pub struct Broker {
    bin: PathBuf,
    child: Option<Child>,
    port: u16,
    log: PathBuf,
    /// `memory://tansu/` or `s3://tansu/`
    storage: String,
    env: Vec<(String, String)>,
    moto: Option<Child>,
    paused: bool,
}

impl Broker {
    /// Start a broker with in-memory storage. None (skip) when no binary.
    pub fn start() -> Option<Broker> {
        let Some(bin) = tansu_bin() else {
            return unavailable(
                "no tansu broker (set TANSU_BIN=/path/to/tansu, or install it: \
                 cargo install tansu --version 0.6.0 --locked --features dynostore \
                 --root ~/.cache/tansu/install)",
            );
        };
        Some(Self::launch(
            bin,
            "memory://tansu/".into(),
            Vec::new(),
            None,
        ))
    }

    /// Start a broker whose data (topics, records, committed offsets) survives
    /// `restart()`: S3 storage on a local `moto_server` ($`MOTO_SERVER` or PATH).
    pub fn start_persistent() -> Option<Broker> {
        let Some(bin) = tansu_bin() else {
            return unavailable("no tansu broker (set TANSU_BIN=/path/to/tansu)");
        };
        let moto_bin = std::env::var_os("MOTO_SERVER")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .or_else(|| find_on_path("moto_server"));
        let Some(moto_bin) = moto_bin else {
            return unavailable(
                "no moto_server for a persistent tansu broker (pip install 'moto[server]', or set MOTO_SERVER)",
            );
        };
        let (moto, mport) = start_moto(&moto_bin);
        let env = vec![
            ("AWS_ENDPOINT".into(), format!("http://127.0.0.1:{mport}")),
            ("AWS_ALLOW_HTTP".into(), "true".into()),
            ("AWS_ACCESS_KEY_ID".into(), "test".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "test".into()),
            ("AWS_DEFAULT_REGION".into(), "us-east-1".into()),
        ];
        Some(Self::launch(bin, "s3://tansu/".into(), env, Some(moto)))
    }

    fn launch(
        bin: PathBuf,
        storage: String,
        env: Vec<(String, String)>,
        moto: Option<Child>,
    ) -> Broker {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let log = log_dir().join(format!("tansu-{}-{n}.log", std::process::id()));
        let mut b = Broker {
            bin,
            child: None,
            port: 0,
            log,
            storage,
            env,
            moto,
            paused: false,
        };
        let mut last_err = String::new();
        for _ in 0..5 {
            let port = free_port();
            match b.spawn_on(port) {
                Ok(()) => return b,
                Err(e) => last_err = e,
            }
        }
        panic!(
            "tansu broker did not start: {last_err}\nlog: {}",
            b.log.display()
        );
    }

    /// Spawn on `port` and wait for readiness. Err (child reaped) on failure.
    fn spawn_on(&mut self, port: u16) -> Result<(), String> {
        let url = format!("tcp://127.0.0.1:{port}");
        let mut logf = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| e.to_string())?;
        let start_mark = logf.metadata().map_or(0, |m| m.len());
        let _ = writeln!(
            logf,
            "=== starting {} on {url} ({})",
            self.bin.display(),
            self.storage
        );
        let mut cmd = Command::new(&self.bin);
        cmd.args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
        ])
        .args(["--storage-engine", &self.storage])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(logf.try_clone().map_err(|e| e.to_string())?)
        .stderr(logf);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", self.bin.display()))?;
        let deadline = Instant::now() + READY_DEADLINE;
        let mut ready_at: Option<Instant> = None;
        loop {
            let text = read_from(&self.log, start_mark);
            // tansu 0.6.0 on a taken port logs AddrInUse, may still print
            // "ready", and exits 0 a moment later.
            if text.contains("AddrInUse") || text.contains("Address already in use") {
                reap(&mut child);
                return Err(format!("port {port} in use"));
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "tansu exited early ({status}):\n{}",
                    tail(&text, 2000)
                ));
            }
            if ready_at.is_none() && text.lines().any(|l| l.starts_with("ready in")) {
                ready_at = Some(Instant::now());
            }
            if let Some(t) = ready_at {
                // short grace period to catch the AddrInUse exit, then a real connect
                if t.elapsed() >= Duration::from_millis(50)
                    && TcpStream::connect_timeout(
                        &SocketAddr::from(([127, 0, 0, 1], port)),
                        Duration::from_secs(1),
                    )
                    .is_ok()
                {
                    self.child = Some(child);
                    self.port = port;
                    self.paused = false;
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                reap(&mut child);
                return Err(format!(
                    "not ready within {READY_DEADLINE:?}:\n{}",
                    tail(&text, 2000)
                ));
            }
            sleep(Duration::from_millis(10));
        }
    }

    /// `127.0.0.1:PORT`, for `bootstrap.servers`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(std::process::Child::id)
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The broker's output so far (for assertion messages).
    pub fn logs(&self) -> String {
        read_from(&self.log, 0)
    }

    /// True when data survives `restart()` (S3 storage).
    pub fn is_persistent(&self) -> bool {
        self.storage.starts_with("s3:")
    }

    /// Kill (SIGKILL) and reap the broker. Idempotent.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            if self.paused {
                signal(c.id(), "CONT");
            }
            reap(&mut c);
        }
        self.paused = false;
    }

    /// kill -9 the broker and start it again on the same port (clients keep
    /// their bootstrap address). Data survives only for `start_persistent()`
    /// brokers; a memory broker comes back empty.
    pub fn restart(&mut self) {
        self.stop();
        self.start_again();
    }

    /// Start again after `stop()`, on the same port.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "broker still running");
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            match self.spawn_on(self.port) {
                Ok(()) => return,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    sleep(Duration::from_millis(200));
                }
                Err(e) => panic!(
                    "tansu restart on port {} failed: {e}\nlog: {}",
                    self.port,
                    self.log.display()
                ),
            }
        }
    }

    /// SIGSTOP the broker: connections stay open but nothing answers (a
    /// network partition / hung broker). Clients with default settings waited
    /// and lost nothing across a 15 s pause; see FINDINGS for longer pauses.
    pub fn pause(&mut self) {
        if let Some(pid) = self.pid() {
            signal(pid, "STOP");
            self.paused = true;
        }
    }

    /// SIGCONT after `pause()`.
    pub fn resume(&mut self) {
        if let Some(pid) = self.pid() {
            signal(pid, "CONT");
            self.paused = false;
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
        if let Some(mut m) = self.moto.take() {
            reap(&mut m);
        }
    }
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill -{sig} {pid} failed");
}

fn reap(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn read_from(path: &Path, offset: u64) -> String {
    let mut s = String::new();
    if let Ok(mut f) = File::open(path) {
        let mut buf = Vec::new();
        let _ = f.read_to_end(&mut buf);
        let off = (offset as usize).min(buf.len());
        s = String::from_utf8_lossy(&buf[off..]).into_owned();
    }
    s
}

fn tail(s: &str, n: usize) -> &str {
    let mut i = s.len().saturating_sub(n);
    while !s.is_char_boundary(i) {
        i += 1;
    }
    &s[i..]
}

/// Start `moto_server` on a free port and create bucket `tansu`.
fn start_moto(bin: &Path) -> (Child, u16) {
    let log = log_dir().join(format!(
        "moto-{}-{}.log",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    for _ in 0..5 {
        let port = free_port();
        let f = File::create(&log).expect("moto log");
        let mut child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(f.try_clone().expect("moto log"))
            .stderr(f)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            if let Some(status) = http_put(port, "/tansu") {
                if status == 200 {
                    return (child, port);
                }
                panic!(
                    "moto_server: PUT /tansu answered {status}; log {}",
                    log.display()
                );
            }
            sleep(Duration::from_millis(100));
        }
        reap(&mut child);
    }
    panic!("moto_server did not start; log {}", log.display());
}

/// Minimal HTTP/1.1 PUT with an empty body; Some(status) or None if no connection.
fn http_put(port: u16, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(500),
    )
    .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").ok()?;
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    resp.split_whitespace().nth(1)?.parse().ok()
}

/// Drive a future to completion on this thread without an async runtime
/// (rdkafka's admin futures are completed by rdkafka's own poll thread).
pub fn block_on<F: std::future::Future>(fut: F, timeout: Duration) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    let deadline = Instant::now() + timeout;
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "future not ready within {timeout:?}"
        );
        sleep(Duration::from_millis(2));
    }
}

/// Base client config for this broker.
pub fn client_config(broker: &Broker) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", broker.addr());
    c
}

/// Create a topic with `partitions` partitions (replication 1); waits until
/// the metadata shows every partition. Panics on error (incl. already exists).
pub fn create_topic(broker: &Broker, name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> =
        client_config(broker).create().expect("admin client");
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = block_on(
        admin.create_topics([&topic], &opts),
        Duration::from_secs(30),
    )
    .expect("create_topics");
    for r in results {
        if let Err((t, code)) = r {
            panic!("create topic {t}: {code:?}");
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let md = admin
            .inner()
            .fetch_metadata(Some(name), Duration::from_secs(5))
            .expect("metadata");
        if md.topics().iter().any(|t| {
            t.name() == name && t.error().is_none() && t.partitions().len() == partitions as usize
        }) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "topic {name} not visible in metadata"
        );
        sleep(Duration::from_millis(50));
    }
}

/// (partition or None for the key-hash partitioner, key, value, timestamp ms)
pub type Rec<'a> = (Option<i32>, &'a [u8], &'a [u8], i64);

/// Produce and flush; panics if any record is not acknowledged. One record
/// per batch (see module doc: tansu cannot fetch from the middle of a batch).
pub fn produce(broker: &Broker, topic: &str, records: &[Rec<'_>]) {
    let producer: BaseProducer = client_config(broker)
        .set("batch.num.messages", "1")
        .set("linger.ms", "0")
        .set("enable.idempotence", "true")
        .create()
        .expect("producer");
    for &(partition, key, value, ts) in records {
        let mut rec = BaseRecord::to(topic).key(key).payload(value).timestamp(ts);
        if let Some(p) = partition {
            rec = rec.partition(p);
        }
        let mut rec = rec;
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    rec = r;
                    producer.poll(Duration::from_millis(50));
                }
                Err((e, _)) => panic!("produce to {topic}: {e}"),
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
    assert_eq!(producer.in_flight_count(), 0, "unacknowledged records");
}

/// One consumed record.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Consumed {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub timestamp: Option<i64>,
}

/// Every record of every partition, from the beginning to the end (partition
/// EOF from the broker's fetch high watermark), sorted by (partition, offset),
/// `read_uncommitted`. Duplicate deliveries are dropped.
pub fn consume_all(broker: &Broker, topic: &str) -> Vec<Consumed> {
    let consumer: BaseConsumer = client_config(broker)
        .set(
            "group.id",
            format!(
                "kafka-util-consume-all-{}",
                SEQ.fetch_add(1, Ordering::Relaxed)
            ),
        )
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_uncommitted")
        .create()
        .expect("consumer");
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let parts: Vec<i32> = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map(|t| {
            t.partitions()
                .iter()
                .map(rdkafka::metadata::MetadataPartition::id)
                .collect()
        })
        .unwrap_or_default();
    assert!(!parts.is_empty(), "topic {topic} has no partitions");
    let mut tpl = TopicPartitionList::new();
    for &p in &parts {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");
    let mut next: HashMap<i32, i64> = HashMap::new();
    let mut at_eof: BTreeMap<i32, bool> = parts.iter().map(|&p| (p, false)).collect();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while at_eof.values().any(|e| !e) {
        assert!(
            Instant::now() < deadline,
            "consume_all({topic}) did not reach the end: {at_eof:?}"
        );
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_eof.insert(p, true);
            }
            Some(Err(e)) => panic!("consume {topic}: {e}"),
            Some(Ok(m)) => {
                let p = m.partition();
                let n = next.entry(p).or_insert(0);
                if m.offset() < *n {
                    continue; // duplicate delivery
                }
                *n = m.offset() + 1;
                at_eof.insert(p, false);
                out.push(Consumed {
                    partition: p,
                    offset: m.offset(),
                    key: m.key().map(<[u8]>::to_vec),
                    value: m.payload().map(<[u8]>::to_vec),
                    timestamp: m.timestamp().to_millis(),
                });
            }
        }
    }
    out.sort();
    out
}
