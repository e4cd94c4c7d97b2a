//! Render time of agent-init against `envsubst`: the process wall time (spawn to exit) to render
//! a realistic Calypso set — `calypsosystem.properties`, `calypsouser.properties`, `log4j2.xml`
//! and `jvm.options` templates with 200 keys in all, 170 of them placeholders (`${VAR}`,
//! `${VAR:-default}`) of which 20 are `${secret:KEY}` read from a Secret-like directory.
//!
//! agent-init renders the whole set in one process (all four files, validated, escaped, each
//! written atomically and fsynced). `envsubst` handles one stream, so one render is four
//! processes run one after the other (`envsubst < T > F`); their sum is compared, and each file
//! is reported too. envsubst knows neither defaults nor secrets: its copies of the templates say
//! `${VAR}` where agent-init's say `${VAR:-default}` (the variables are set to the defaults
//! instead) and `${SECRET_KEY}` where agent-init's say `${secret:KEY}` (the secret values are
//! passed as environment variables). It escapes nothing, so its `.properties` files are not what
//! `java.util.Properties` reads back for the values with `\ = : #` — the point of agent-init —
//! but it is the cost floor of substitution by a process.

// A benchmark reports on stdout.
#![allow(clippy::print_stdout)]

use std::fmt::Write as _;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "render-time", version)]
struct Cli {
    /// The agent-init binary to measure (use the static release build).
    #[arg(long)]
    agent_init: PathBuf,
    /// The envsubst binary (Debian's gettext-base) [default: envsubst on PATH].
    #[arg(long)]
    envsubst: Option<PathBuf>,
    /// Renders per subject.
    #[arg(long, default_value_t = 50)]
    runs: usize,
    /// Directory to create the work directory in (templates, secrets, outputs) [default: the
    /// system's temporary directory]. Its file system decides what agent-init's fsyncs cost.
    #[arg(long)]
    work_dir: Option<PathBuf>,
}

/// The environment name of the rendered files (`calypsosystem.properties.BENCH`).
const ENV: &str = "BENCH";

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("render-time: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<(), String> {
    let envsubst = match &cli.envsubst {
        Some(p) => p.clone(),
        None => {
            on_path("envsubst").ok_or("envsubst not found on PATH (Debian: apt-get install gettext-base)")?
        }
    };
    let agent_init = fs::canonicalize(&cli.agent_init)
        .map_err(|e| format!("agent-init {}: {e}", cli.agent_init.display()))?;
    if cli.runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    let parent = cli.work_dir.clone().unwrap_or_else(std::env::temp_dir);
    let work = tempfile::Builder::new()
        .prefix("render-time-")
        .tempdir_in(&parent)
        .map_err(|e| format!("cannot create a work directory in {}: {e}", parent.display()))?;
    let set = TemplateSet::realistic();
    let dirs = set.write(work.path()).map_err(|e| format!("cannot write the templates: {e}"))?;

    let mut agent = agent_init_command(&agent_init, &set, &dirs);
    let files: Vec<(&str, PathBuf, PathBuf)> = set
        .files
        .iter()
        .map(|f| (f.name, dirs.envsubst_templates.join(f.name), dirs.envsubst_out.join(output_name(f.name))))
        .collect();
    let mut envsubst = envsubst_command(&envsubst, &set.envsubst_env());

    // One untimed round first: checks that both render correctly, and warms the page cache.
    clear(&dirs.agent_out)?;
    time(&mut agent, None, None)?;
    check_agent_init(&set, &dirs.agent_out)?;
    for (_, template, output) in &files {
        time(&mut envsubst, Some(template), Some(output))?;
    }
    check_envsubst(&dirs.envsubst_out)?;

    let mut fresh = Vec::with_capacity(cli.runs);
    let mut unchanged = Vec::with_capacity(cli.runs);
    let mut sums = Vec::with_capacity(cli.runs);
    let mut per_file = vec![Vec::with_capacity(cli.runs); files.len()];
    // Interleaved, so that a drift of the machine's speed affects every subject alike.
    for _ in 0..cli.runs {
        clear(&dirs.agent_out)?;
        fresh.push(time(&mut agent, None, None)?);
        // Same inputs, files already there: agent-init compares and writes nothing.
        unchanged.push(time(&mut agent, None, None)?);
        let mut sum = Duration::ZERO;
        for (k, (_, template, output)) in files.iter().enumerate() {
            let d = time(&mut envsubst, Some(template), Some(output))?;
            per_file[k].push(d);
            sum += d;
        }
        sums.push(sum);
    }

    println!(
        "render time: {} templates, {} keys ({} placeholders, {} secrets), {} bytes of templates, {} \
variables; process wall time, {} runs each, in {}",
        set.files.len(),
        set.keys(),
        set.placeholders(),
        set.secrets(),
        set.template_bytes(),
        set.agent_init_env().len(),
        cli.runs,
        parent.display()
    );
    report("agent-init, one process (written)", &mut fresh);
    report("agent-init, one process (unchanged)", &mut unchanged);
    report("envsubst, 4 processes (sum)", &mut sums);
    for ((name, _, _), samples) in files.iter().zip(&mut per_file) {
        report(&format!("  envsubst {name}"), samples);
    }
    Ok(())
}

/// Prints median, p90, min and max in milliseconds.
fn report(name: &str, samples: &mut [Duration]) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let pick = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "  {name:<42} median {:>6.2} ms   p90 {:>6.2} ms   min {:>6.2} ms   max {:>6.2} ms",
        ms(pick(0.5)),
        ms(pick(0.9)),
        ms(samples[0]),
        ms(samples[samples.len() - 1])
    );
}

/// Runs the command to its end and returns the wall time from spawn to exit; stdin and stdout
/// are the files given (opened inside the timed span, as a shell redirection would be).
fn time(cmd: &mut Command, stdin: Option<&Path>, stdout: Option<&Path>) -> Result<Duration, String> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let start = Instant::now();
    let input = match stdin {
        Some(p) => Stdio::from(File::open(p).map_err(|e| format!("{}: {e}", p.display()))?),
        None => Stdio::null(),
    };
    let output = match stdout {
        Some(p) => Stdio::from(File::create(p).map_err(|e| format!("{}: {e}", p.display()))?),
        None => Stdio::null(),
    };
    let status = cmd
        .stdin(input)
        .stdout(output)
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let elapsed = start.elapsed();
    if !status.success() {
        return Err(format!("{program} failed: {status} (run it by hand on the work directory)"));
    }
    Ok(elapsed)
}

fn agent_init_command(agent_init: &Path, set: &TemplateSet, dirs: &Dirs) -> Command {
    let mut cmd = Command::new(agent_init);
    cmd.env_clear()
        .envs(set.agent_init_env())
        .env("AGENT_INIT_TEMPLATES", &dirs.agent_templates)
        .env("AGENT_INIT_ENV", ENV)
        .env("AGENT_INIT_SECRETS_DIR", &dirs.secrets)
        .env("AGENT_INIT_OUTPUT", &dirs.agent_out);
    cmd
}

fn envsubst_command(envsubst: &Path, env: &[(String, String)]) -> Command {
    let mut cmd = Command::new(envsubst);
    cmd.env_clear().envs(env.iter().map(|(k, v)| (k, v)));
    cmd
}

/// The file a template becomes (for agent-init; envsubst's outputs are named alike).
fn output_name(template: &str) -> String {
    let name = template.trim_end_matches(".tmpl");
    if name.ends_with(".properties") { format!("{name}.{ENV}") } else { name.to_owned() }
}

fn clear(dir: &Path) -> Result<(), String> {
    for entry in fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        fs::remove_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(name)).find(|p| p.is_file())
}

/// agent-init wrote the four files, substituted everything, and the password reads back.
fn check_agent_init(set: &TemplateSet, out: &Path) -> Result<(), String> {
    for file in &set.files {
        let path = out.join(output_name(file.name));
        let text =
            fs::read_to_string(&path).map_err(|e| format!("agent-init wrote no {}: {e}", path.display()))?;
        if text.replace("${sys:", "").contains("${") {
            return Err(format!("{} has an unsubstituted placeholder", path.display()));
        }
    }
    let system = out.join(output_name("calypsosystem.properties.tmpl"));
    let text = fs::read_to_string(&system).map_err(|e| e.to_string())?;
    let pairs =
        calypso::properties::Document::parse(&text).and_then(|d| d.pairs()).map_err(|e| e.to_string())?;
    let password = pairs.iter().rev().find(|(k, _)| k == "DBPASSWORD").map(|(_, v)| v.as_str());
    if password != Some(DB_PASSWORD) {
        return Err(format!("{}: DBPASSWORD does not read back", system.display()));
    }
    Ok(())
}

fn check_envsubst(out: &Path) -> Result<(), String> {
    for entry in fs::read_dir(out).map_err(|e| e.to_string())? {
        let path = entry.map_err(|e| e.to_string())?.path();
        let text = fs::read_to_string(&path).map_err(|e| e.to_string())?;
        if text.replace("${sys:", "").contains("${") || text.is_empty() {
            return Err(format!("envsubst left a placeholder in {}", path.display()));
        }
    }
    Ok(())
}

// ---- the template set --------------------------------------------------------------------------

const DB_PASSWORD: &str = "Xq7#r=9:T!a\\v2 $Lk";

/// What fills one key's value.
#[derive(Debug, Clone)]
enum Value {
    /// Written in the template as is.
    Literal(String),
    /// `${VAR}`, the variable set to this value.
    Env(String, String),
    /// `${VAR:-default}`; the variable is set to the value when there is one, else unset (for
    /// envsubst it is then set to the default).
    Default(String, String, Option<String>),
    /// `${secret:KEY}` with the file's contents.
    Secret(String, String),
}

#[derive(Debug)]
struct TemplateFile {
    name: &'static str,
    head: String,
    /// One key per line: the line with `@` where the value goes.
    keys: Vec<(String, Value)>,
    tail: String,
}

#[derive(Debug)]
struct TemplateSet {
    files: Vec<TemplateFile>,
}

struct Dirs {
    agent_templates: PathBuf,
    envsubst_templates: PathBuf,
    secrets: PathBuf,
    agent_out: PathBuf,
    envsubst_out: PathBuf,
}

fn env(var: &str, value: impl Into<String>) -> Value {
    Value::Env(var.to_owned(), value.into())
}

fn default(var: &str, default: impl Into<String>, set: Option<&str>) -> Value {
    Value::Default(var.to_owned(), default.into(), set.map(str::to_owned))
}

fn secret(key: &str, value: impl Into<String>) -> Value {
    Value::Secret(key.to_owned(), value.into())
}

fn literal(value: impl Into<String>) -> Value {
    Value::Literal(value.into())
}

/// A line without a value to fill (an option that is always there).
fn fixed(line: &str) -> (String, Value) {
    (format!("{line}@"), literal(""))
}

/// `KEY=${KEY}` style properties lines.
fn prop(key: &str, value: Value) -> (String, Value) {
    (format!("{key}=@"), value)
}

const ENGINES: [&str; 12] = [
    "TransferEngine",
    "TaskEngine",
    "MessageEngine",
    "SettlementEngine",
    "AccountingEngine",
    "LiquidationEngine",
    "PositionEngine",
    "InventoryEngine",
    "CreEngine",
    "MatchingEngine",
    "PricingEngine",
    "ScheduledTaskEngine",
];

const LOG_CATEGORIES: [&str; 30] = [
    "TRADE",
    "BO",
    "BACKOFFICE",
    "TRANSFER",
    "MESSAGE",
    "TASK",
    "SETTLEMENT",
    "ACCOUNTING",
    "LIQUIDATION",
    "POSITION",
    "INVENTORY",
    "CRE",
    "PRICING",
    "MARKETDATA",
    "RISK",
    "PRICER",
    "SQL",
    "DATASERVER",
    "EVENTSERVER",
    "AUTH",
    "CACHE",
    "SCHEDULER",
    "DISPATCHER",
    "WORKFLOW",
    "REPORT",
    "UPLOADER",
    "GATEWAY",
    "SWIFT",
    "CONFIRMATION",
    "LIMIT",
];

impl TemplateSet {
    /// The 200-key set (the counts are checked by a test).
    fn realistic() -> TemplateSet {
        let ns = "calypso-uat1.svc.cluster.local";
        let mut system = vec![
            prop("DRIVER", default("DB_DRIVER", "oracle.jdbc.OracleDriver", None)),
            prop("DBURL", env("DBURL", "jdbc:oracle:thin:@//calypso-db.uat.example.com:1521/CALUAT1")),
            prop("DBUSER", env("DBUSER", "calypso_uat1")),
            prop("DBPASSWORD", secret("db-password", DB_PASSWORD)),
            prop(
                "DBURL_READONLY",
                env("DBURL_READONLY", "jdbc:oracle:thin:@//calypso-db-ro.uat.example.com:1521/CALUAT1"),
            ),
            prop("DBUSER_READONLY", env("DBUSER_READONLY", "calypso_ro")),
            prop("DBPASSWORD_READONLY", secret("db-readonly-password", "r0:only=pw#2")),
            prop("DATA_SERVER_NAME", env("DATA_SERVER_NAME", "dataserver-uat1")),
            prop("DATA_SERVER_HOST", env("DATA_SERVER_HOST", format!("dataserver.{ns}"))),
            prop("DATA_SERVER_PORT", default("DATA_SERVER_PORT", "1099", None)),
            prop("EVENT_SERVER_NAME", env("EVENT_SERVER_NAME", "eventserver-uat1")),
            prop("EVENTSERVERHOST", env("EVENTSERVERHOST", format!("eventserver.{ns}"))),
            prop("EVENTSERVERPORT", default("EVENTSERVERPORT", "61616", None)),
            prop("AUTHSERVERHOST", env("AUTHSERVERHOST", format!("authserver.{ns}"))),
            prop("AUTHSERVERPORT", default("AUTHSERVERPORT", "1098", None)),
            prop(
                "JMS_PROVIDER_URL",
                env("JMS_PROVIDER_URL", "failover:(tcp://amq-0:61616,tcp://amq-1:61616)"),
            ),
            prop("JMS_USER", env("JMS_USER", "calypso")),
            prop("JMS_PASSWORD", secret("jms-password", "jms!Pa55:w0rd")),
            prop("LDAP_URL", env("LDAP_URL", "ldaps://ldap.example.com:636")),
            prop("LDAP_BIND_DN", env("LDAP_BIND_DN", "cn=calypso-uat1,ou=services,dc=example,dc=com")),
            prop("LDAP_BIND_PASSWORD", secret("ldap-bind-password", "ld@p bind=pw")),
            prop("SMTP_HOST", env("SMTP_HOST", "smtp.example.com")),
            prop("SMTP_PORT", default("SMTP_PORT", "587", Some("25"))),
            prop("SMTP_USER", env("SMTP_USER", "calypso-uat1@example.com")),
            prop("SMTP_PASSWORD", secret("smtp-password", "sm7p#Secret")),
            prop("KEYSTORE", env("KEYSTORE", "/etc/calypso/tls/keystore.p12")),
            prop("KEYSTORE_PASSWORD", secret("keystore-password", "k3ystore!pw")),
            prop("TRUSTSTORE", env("TRUSTSTORE", "/etc/calypso/tls/truststore.p12")),
            prop("TRUSTSTORE_PASSWORD", secret("truststore-password", "trust=me:1")),
            prop("BPIPE_HOST", env("BPIPE_HOST", "bpipe.example.com")),
            prop("BPIPE_APP_NAME", env("BPIPE_APP_NAME", "CALYPSO:UAT1")),
            prop("BPIPE_APP_SECRET", secret("bpipe-app-secret", "bp#1pe\\secret")),
            prop("MARKETDATA_API_KEY", secret("marketdata-api-key", "mdk_4f9c2a7e1b")),
            prop("SWIFT_ALLIANCE_PASSWORD", secret("swift-alliance-password", "Sw!ft 2026")),
            prop("ENV_NAME", env("ENV_NAME", "UAT1")),
            prop("CALYPSO_HOME", env("CALYPSO_HOME", "/opt/calypso")),
            prop("TEMP_DIR", default("TEMP_DIR", "/tmp/calypso", None)),
            prop("DOCUMENT_DIR", env("DOCUMENT_DIR", "/data/calypso/documents")),
            prop("TIMEZONE", default("TIMEZONE", "Europe/London", None)),
            prop("DB_POOL_MIN", default("DB_POOL_MIN", "5", Some("10"))),
            prop("DB_POOL_MAX", default("DB_POOL_MAX", "50", Some("80"))),
            prop("DB_QUERY_TIMEOUT", default("DB_QUERY_TIMEOUT", "300", None)),
            prop("DB_FETCH_SIZE", default("DB_FETCH_SIZE", "500", None)),
            prop("USE_ORACLE", literal("true")),
            prop("USE_CACHE", literal("true")),
            prop("RMI_REGISTRY", literal("true")),
            prop("CLUSTER_ENABLED", literal("false")),
            prop("EVENT_PERSISTENCE", literal("true")),
            prop("SQL_TRACE", literal("false")),
        ];
        for (k, engine) in ENGINES.iter().enumerate() {
            let up = engine.to_ascii_uppercase();
            system.push(prop(
                &format!("ENGINE_{up}_THREADS"),
                env(&format!("ENGINE_{up}_THREADS"), format!("{}", 2 + k % 6)),
            ));
            system.push(prop(
                &format!("ENGINE_{up}_BATCH_SIZE"),
                default(&format!("ENGINE_{up}_BATCH_SIZE"), "100", None),
            ));
        }
        for cache in ["TRADE", "PRODUCT", "LEGALENTITY", "BOOK", "QUOTE", "REFERENCE", "USER"] {
            system.push(prop(&format!("CACHE_{cache}_SIZE"), literal("10000")));
        }

        let mut user = vec![
            prop("CLIENTUSER", env("CLIENTUSER", "calypso_user")),
            prop("CLIENTPASSWORD", secret("client-password", "cl!ent=pw:9")),
            prop("ADMINUSER", env("ADMINUSER", "calypso_admin")),
            prop("ADMINPASSWORD", secret("admin-password", "Adm1n#Pw")),
            prop(
                "REPORT_DBURL",
                env("REPORT_DBURL", "jdbc:oracle:thin:@//reportdb.uat.example.com:1521/RPTUAT1"),
            ),
            prop("REPORT_DBUSER", env("REPORT_DBUSER", "calypso_report")),
            prop("REPORT_DBPASSWORD", secret("report-db-password", "r3port pw")),
            prop("SFTP_HOST", env("SFTP_HOST", "sftp.example.com")),
            prop("SFTP_USER", env("SFTP_USER", "calypso-feeds")),
            prop("SFTP_PASSWORD", secret("sftp-password", "sftp\\pw!")),
            prop("REST_API_URL", env("REST_API_URL", "https://calypso-api.uat.example.com/api")),
            prop("REST_API_TOKEN", secret("rest-api-token", "eyJhbGciOiJIUzI1NiJ9.e30.sig")),
            prop("OAUTH_TOKEN_URL", env("OAUTH_TOKEN_URL", "https://login.example.com/oauth2/token")),
            prop("OAUTH_CLIENT_ID", env("OAUTH_CLIENT_ID", "calypso-uat1")),
            prop("OAUTH_CLIENT_SECRET", secret("oauth-client-secret", "0auth:cl1ent=secret")),
            prop("USER_LOCALE", default("USER_LOCALE", "en_GB", None)),
            prop("USER_TIMEZONE", default("USER_TIMEZONE", "Europe/London", Some("Europe/Paris"))),
            prop("DATE_FORMAT", default("DATE_FORMAT", "dd/MM/yyyy", None)),
            prop("DEFAULT_PRICING_ENV", env("DEFAULT_PRICING_ENV", "OFFICIAL")),
            prop("DEFAULT_BOOK", env("DEFAULT_BOOK", "UAT1_BOOK")),
            prop("DEFAULT_PO", env("DEFAULT_PO", "UAT1_PO")),
            prop("WINDOW_TITLE", literal("Calypso UAT1")),
            prop("SHOW_SPLASH", literal("false")),
            prop("AUTO_LOGIN", literal("false")),
        ];
        for module in ["TRADE", "BO", "RISK", "REPORT", "PRICING", "MARKETDATA", "REFDATA"] {
            user.push(prop(
                &format!("{module}_WINDOW_ENABLED"),
                env(&format!("{module}_WINDOW_ENABLED"), "true"),
            ));
            user.push(prop(
                &format!("{module}_MAX_ROWS"),
                default(&format!("{module}_MAX_ROWS"), "5000", None),
            ));
        }
        for feed in [
            "BLOOMBERG",
            "REUTERS",
            "MARKIT",
            "SWIFT",
            "DTCC",
            "TRADEWEB",
            "ICAP",
            "BROKERTEC",
            "EUREX",
            "LCH",
        ] {
            user.push(prop(
                &format!("FEED_{feed}_DIR"),
                env(&format!("FEED_{feed}_DIR"), format!("/data/feeds/{}", feed.to_ascii_lowercase())),
            ));
        }

        let mut log4j = vec![
            ("    <Property name=\"logDir\">@</Property>".into(), env("CALYPSO_LOG_DIR", "/var/log/calypso")),
            ("    <Property name=\"server\">@</Property>".into(), env("SERVER_NAME", "dataserver-uat1")),
            (
                "    <Property name=\"pattern\">@</Property>".into(),
                default("LOG_PATTERN", "%d %-5p [%t] [%c] %m%n", None),
            ),
            ("    <Property name=\"maxSize\">@</Property>".into(), default("LOG_MAX_SIZE", "100 MB", None)),
            (
                "    <Property name=\"maxFiles\">@</Property>".into(),
                default("LOG_MAX_FILES", "10", Some("20")),
            ),
            (
                "    <Property name=\"esUrl\">@</Property>".into(),
                env("ES_URL", "https://elastic.example.com:9200"),
            ),
            ("    <Property name=\"esUser\">@</Property>".into(), env("ES_USER", "calypso-logs")),
            (
                "    <Property name=\"esPassword\">@</Property>".into(),
                secret("elastic-password", "el@stic<pw>&1"),
            ),
            ("    <Property name=\"esIndex\">@</Property>".into(), default("ES_INDEX", "calypso-logs", None)),
            (
                "    <Property name=\"syslogHost\">@</Property>".into(),
                env("SYSLOG_HOST", "syslog.example.com"),
            ),
            ("    <Property name=\"syslogPort\">@</Property>".into(), default("SYSLOG_PORT", "514", None)),
            (
                "    <Property name=\"smtpTo\">@</Property>".into(),
                env("LOG_SMTP_TO", "calypso-support@example.com"),
            ),
            (
                "    <Property name=\"smtpPassword\">@</Property>".into(),
                secret("smtp-appender-password", "\"smtp\" & pw"),
            ),
        ];
        for cat in LOG_CATEGORIES {
            log4j.push((
                format!("    <Logger name=\"com.calypso.{}\" level=\"@\"/>", cat.to_ascii_lowercase()),
                default(
                    &format!("LOG_CATEGORY_{cat}"),
                    "INFO",
                    if cat.len() % 3 == 0 { Some("DEBUG") } else { None },
                ),
            ));
        }
        for (name, level) in
            [("org.hibernate", "WARN"), ("org.apache.activemq", "WARN"), ("org.springframework", "WARN")]
        {
            log4j.push((format!("    <Logger name=\"{name}\" level=\"@\"/>"), literal(level)));
        }

        let jvm = vec![
            ("-Xms@".into(), env("JVM_XMS", "4g")),
            ("-Xmx@".into(), env("JVM_XMX", "8g")),
            ("-XX:MaxMetaspaceSize=@".into(), default("JVM_METASPACE", "512m", None)),
            fixed("-XX:+UseG1GC"),
            ("-XX:MaxGCPauseMillis=@".into(), default("JVM_GC_PAUSE", "200", None)),
            fixed("-XX:+HeapDumpOnOutOfMemoryError"),
            fixed("-XX:+ExitOnOutOfMemoryError"),
            ("-XX:ActiveProcessorCount=@".into(), default("JVM_CPUS", "4", Some("2"))),
            ("-XX:HeapDumpPath=@".into(), env("HEAP_DUMP_DIR", "/data/dumps")),
            (
                "-Xlog:gc*:file=@/gc.log:time,uptime:filecount=5,filesize=20m".into(),
                env("GC_LOG_DIR", "/var/log/calypso"),
            ),
            ("-Duser.timezone=@".into(), default("TIMEZONE", "Europe/London", None)),
            ("-Dcalypso.env=@".into(), env("ENV_NAME", "UAT1")),
            ("-Dcalypso.home=@".into(), env("CALYPSO_HOME", "/opt/calypso")),
            ("-Dcom.sun.management.jmxremote.port=@".into(), default("JMX_PORT", "9010", None)),
            ("-Dcom.sun.management.jmxremote.password=@".into(), secret("jmx-password", "jmx pw#1")),
            ("-Djavax.net.ssl.keyStore=@".into(), env("KEYSTORE", "/etc/calypso/tls/keystore.p12")),
            ("-Djavax.net.ssl.keyStorePassword=@".into(), secret("jvm-keystore-password", "k3y$tore")),
            ("-Djavax.net.ssl.trustStore=@".into(), env("TRUSTSTORE", "/etc/calypso/tls/truststore.p12")),
            ("-Djava.io.tmpdir=@".into(), default("TEMP_DIR", "/tmp/calypso", None)),
            fixed("-Dfile.encoding=UTF-8"),
            ("-Dsun.net.inetaddr.ttl=@".into(), default("DNS_TTL", "60", None)),
            ("-Dlog4j.configurationFile=@/log4j2.xml".into(), env("CALYPSO_CONFIG_DIR", "/calypso/config")),
            ("-Dcalypso.config=@".into(), env("CALYPSO_CONFIG_DIR", "/calypso/config")),
            ("-Dcalypso.authserver=@".into(), env("AUTHSERVERHOST", format!("authserver.{ns}"))),
            ("-Dcalypso.dataserver=@".into(), env("DATA_SERVER_HOST", format!("dataserver.{ns}"))),
            ("-Dcalypso.eventserver=@".into(), env("EVENTSERVERHOST", format!("eventserver.{ns}"))),
        ];

        TemplateSet {
            files: vec![
                TemplateFile {
                    name: "calypsosystem.properties.tmpl",
                    head: "# calypsosystem.properties: rendered per environment by the init container\n".into(),
                    keys: system,
                    tail: String::new(),
                },
                TemplateFile {
                    name: "calypsouser.properties.tmpl",
                    head: "# calypsouser.properties\n".into(),
                    keys: user,
                    tail: String::new(),
                },
                TemplateFile {
                    name: "log4j2.xml.tmpl",
                    head: "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Configuration status=\"WARN\">\n  <Properties>\n".into(),
                    keys: log4j,
                    tail: "  <Appenders>\n    <RollingFile name=\"file\" fileName=\"$${sys:calypso.home}/logs/server.log\" \
filePattern=\"$${sys:calypso.home}/logs/server.log.%i\"/>\n  </Appenders>\n</Configuration>\n"
                        .into(),
                },
                TemplateFile { name: "jvm.options.tmpl", head: "# JVM options\n".into(), keys: jvm, tail: String::new() },
            ],
        }
    }

    fn values(&self) -> impl Iterator<Item = &Value> {
        self.files.iter().flat_map(|f| f.keys.iter().map(|(_, v)| v))
    }

    fn keys(&self) -> usize {
        self.files.iter().map(|f| f.keys.len()).sum()
    }

    fn placeholders(&self) -> usize {
        self.values().filter(|v| !matches!(v, Value::Literal(_))).count()
    }

    fn secrets(&self) -> usize {
        self.values().filter(|v| matches!(v, Value::Secret(..))).count()
    }

    fn template_bytes(&self) -> usize {
        self.files.iter().map(|f| f.text(Tool::AgentInit).len()).sum()
    }

    /// The variables agent-init gets (defaulted ones only when set).
    fn agent_init_env(&self) -> Vec<(String, String)> {
        let mut env = Vec::new();
        for v in self.values() {
            match v {
                Value::Env(var, value) | Value::Default(var, _, Some(value)) => {
                    env.push((var.clone(), value.clone()))
                }
                _ => {}
            }
        }
        env.sort();
        env.dedup();
        env
    }

    /// The variables envsubst gets: every variable (defaults filled in) and the secrets.
    fn envsubst_env(&self) -> Vec<(String, String)> {
        let mut env = Vec::new();
        for v in self.values() {
            match v {
                Value::Env(var, value)
                | Value::Default(var, _, Some(value))
                | Value::Default(var, value, None) => env.push((var.clone(), value.clone())),
                Value::Secret(key, value) => env.push((secret_var(key), value.clone())),
                Value::Literal(_) => {}
            }
        }
        env.sort();
        env.dedup();
        env
    }

    /// Writes both tools' templates, the secrets (laid out as the kubelet mounts a Secret) and
    /// the empty output directories.
    fn write(&self, root: &Path) -> std::io::Result<Dirs> {
        let dirs = Dirs {
            agent_templates: root.join("templates"),
            envsubst_templates: root.join("envsubst-templates"),
            secrets: root.join("secrets"),
            agent_out: root.join("out"),
            envsubst_out: root.join("envsubst-out"),
        };
        for d in [&dirs.agent_templates, &dirs.envsubst_templates, &dirs.agent_out, &dirs.envsubst_out] {
            fs::create_dir_all(d)?;
        }
        for f in &self.files {
            fs::write(dirs.agent_templates.join(f.name), f.text(Tool::AgentInit))?;
            fs::write(dirs.envsubst_templates.join(f.name), f.text(Tool::Envsubst))?;
        }
        let data = dirs.secrets.join("..2026_01_01_00_00_00.000000001");
        fs::create_dir_all(&data)?;
        std::os::unix::fs::symlink("..2026_01_01_00_00_00.000000001", dirs.secrets.join("..data"))?;
        for v in self.values() {
            if let Value::Secret(key, value) = v {
                fs::write(data.join(key), format!("{value}\n"))?;
                std::os::unix::fs::symlink(format!("..data/{key}"), dirs.secrets.join(key))?;
            }
        }
        Ok(dirs)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tool {
    AgentInit,
    Envsubst,
}

/// The variable that carries a secret for envsubst: `db-password` -> `SECRET_DB_PASSWORD`.
fn secret_var(key: &str) -> String {
    format!("SECRET_{}", key.to_ascii_uppercase().replace(['-', '.'], "_"))
}

impl TemplateFile {
    fn text(&self, tool: Tool) -> String {
        let mut out = self.head.clone();
        for (line, value) in &self.keys {
            let slot = match (value, tool) {
                (Value::Literal(v), _) => v.clone(),
                (Value::Env(var, _), _) | (Value::Default(var, _, _), Tool::Envsubst) => {
                    format!("${{{var}}}")
                }
                (Value::Default(var, default, _), Tool::AgentInit) => format!("${{{var}:-{default}}}"),
                (Value::Secret(key, _), Tool::AgentInit) => format!("${{secret:{key}}}"),
                (Value::Secret(key, _), Tool::Envsubst) => format!("${{{}}}", secret_var(key)),
            };
            let _ = writeln!(out, "{}", line.replace('@', &slot));
        }
        if self.name.starts_with("log4j2") {
            out.push_str("  </Properties>\n");
        }
        let tail = match tool {
            Tool::AgentInit => self.tail.clone(),
            // envsubst leaves `${sys:...}` (not a variable name) alone, and has no `$${`.
            Tool::Envsubst => self.tail.replace("$${", "${"),
        };
        out.push_str(&tail);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_set_has_the_announced_counts() {
        let set = TemplateSet::realistic();
        assert_eq!(set.files.len(), 4);
        assert_eq!(set.keys(), 200);
        assert_eq!(set.secrets(), 20);
        assert!(set.placeholders() > 160, "{}", set.placeholders());
    }

    #[test]
    fn envsubst_templates_have_only_plain_variables() {
        let set = TemplateSet::realistic();
        for f in &set.files {
            let text = f.text(Tool::Envsubst);
            assert!(!text.contains(":-") && !text.contains("secret:") && !text.contains("$${"), "{text}");
        }
    }
}
