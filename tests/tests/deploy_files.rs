//! The deployment files under `docker/`, checked offline: the compose file and Grafana
//! provisioning fit together, the Prometheus config passes `promtool check config`, every
//! PromQL expression of the dashboard passes `promtool check rules` and names metrics a live
//! server exports, the Kubernetes example passes the Kubernetes API schema
//! (`kubernetes-validate --strict`, from PyPI) and has the probes, limits and security settings
//! a sidecar needs, and the Dockerfile keeps the properties the container test relies on.
//!
//! External tools (python3 with PyYAML, promtool, kubernetes-validate) are required in CI and
//! skipped with a message elsewhere.

mod deploy_util;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use deploy_util::{repo_root, run_bounded, run_ok, TempDir};
use shardcache_tests::{have, require, resp_str, Server};

/// Whether `python3` can `import yaml`; skips (returns false) or panics in CI when not.
fn python_yaml() -> bool {
    let ok = run_bounded(
        Command::new("python3").args(["-c", "import yaml"]),
        Duration::from_secs(30),
    )
    .map(|o| o.status.success())
    .unwrap_or(false);
    if !ok {
        shardcache_tests::skip("python3 cannot import yaml (PyYAML)");
    }
    ok
}

/// Runs a Python script with the repository root as working directory and `args` as
/// `sys.argv[1:]`; panics with its output unless it exits 0.
fn python(script: &str, args: &[&str]) -> String {
    run_ok(
        Command::new("python3")
            .current_dir(repo_root())
            .arg("-c")
            .arg(script)
            .args(args),
        Duration::from_secs(60),
    )
}

#[test]
fn compose_grafana_and_prometheus_files_fit_together() {
    if !python_yaml() {
        return;
    }
    python(
        r#"
import json, os, sys, yaml

def load(p):
    with open(p) as f:
        return yaml.safe_load(f)

c = load("docker/compose.yaml")
svcs = c["services"]
assert {"shardcache", "prometheus", "grafana"} <= set(svcs), sorted(svcs)

sc = svcs["shardcache"]
assert sc["build"]["context"] == "..", sc["build"]
assert sc["build"]["dockerfile"] == "docker/Dockerfile", sc["build"]
ports = [str(p) for p in sc["ports"]]
assert any(p.endswith(":6379") for p in ports) and any(p.endswith(":9379") for p in ports), ports

# Every bind mount's source exists, relative to docker/ (the compose file's directory).
mounts = {}
for name, s in svcs.items():
    for v in s.get("volumes", []):
        src, dst = v.split(":")[:2]
        if src.startswith("."):
            path = os.path.normpath(os.path.join("docker", src))
            assert os.path.exists(path), f"{name}: {src} -> {path} is missing"
            mounts[(name, dst)] = path
assert mounts.get(("prometheus", "/etc/prometheus/prometheus.yml")) == "docker/prometheus.yml", mounts

# Prometheus scrapes the shardcache service on its metrics port.
prom = load("docker/prometheus.yml")
targets = [t for j in prom["scrape_configs"] for sc_ in j.get("static_configs", []) for t in sc_["targets"]]
assert "shardcache:9379" in targets, targets

# Grafana: the data source points at the prometheus service; the dashboard provider reads the
# directory where the dashboards are mounted, and that directory holds shardcache.json.
prov = [dst for (name, dst), src in mounts.items() if name == "grafana" and src == "docker/grafana/provisioning"]
assert prov == ["/etc/grafana/provisioning"], mounts
ds = load("docker/grafana/provisioning/datasources/prometheus.yaml")["datasources"]
assert any(d["type"] == "prometheus" and d["url"] == "http://prometheus:9090" for d in ds), ds
providers = load("docker/grafana/provisioning/dashboards/shardcache.yaml")["providers"]
dash_dirs = [dst for (name, dst), src in mounts.items() if name == "grafana" and src == "docker/grafana/dashboards"]
assert [p["options"]["path"] for p in providers] == dash_dirs, (providers, dash_dirs)
env = svcs["grafana"].get("environment", {})
home = env.get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
assert home is None or home == dash_dirs[0] + "/shardcache.json", home
json.load(open("docker/grafana/dashboards/shardcache.json"))
print("compose ok")
"#,
        &[],
    );
}

#[test]
fn prometheus_config_passes_promtool() {
    require!("promtool");
    run_ok(
        Command::new("promtool").current_dir(repo_root()).args([
            "check",
            "config",
            "docker/prometheus.yml",
        ]),
        Duration::from_secs(60),
    );
}

/// Every PromQL expression of the dashboard, with Grafana's variables replaced by values
/// PromQL accepts, one per line.
fn dashboard_exprs() -> Vec<String> {
    python(
        r#"
import json
d = json.load(open("docker/grafana/dashboards/shardcache.json"))
assert d["schemaVersion"] >= 36, "Grafana 10+ schema"
assert d["uid"] and d["title"]
ids = []
exprs = []
def walk(panels):
    for p in panels:
        ids.append(p["id"])
        if p["type"] != "row":
            assert p.get("datasource", {}).get("uid") == "${datasource}", p["title"]
            assert p.get("targets"), p["title"]
            g = p["gridPos"]
            assert 0 <= g["x"] and g["x"] + g["w"] <= 24, p["title"]
        for t in p.get("targets", []):
            exprs.append(t["expr"])
        walk(p.get("panels", []))
walk(d["panels"])
assert len(ids) == len(set(ids)), "panel ids must be unique"
names = [v["name"] for v in d["templating"]["list"]]
assert names[0] == "datasource", names
subst = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h",
         "$instance": ".*", "$shard": ".*"}
for e in exprs:
    for k, v in subst.items():
        e = e.replace(k, v)
    assert "$" not in e, e
    assert "\n" not in e
    print(e)
"#,
        &[],
    )
    .lines()
    .map(str::to_string)
    .collect()
}

#[test]
fn dashboard_queries_are_valid_promql() {
    require!("python3");
    require!("promtool");
    let exprs = dashboard_exprs();
    assert!(exprs.len() >= 15, "only {} queries", exprs.len());
    let all = exprs.join("\n");
    for wanted in [
        "histogram_quantile(0.99, sum by (le, shard) (rate(shardcache_shard_lock_wait_seconds_bucket",
        "shardcache_shard_lock_contended_total",
        "shardcache_shard_lock_acquisitions_total",
        "topk(10, sum by (command) (rate(shardcache_commands_total",
        "shardcache_command_duration_seconds_bucket",
        "shardcache_keyspace_hits_total",
        "shardcache_keyspace_misses_total",
        "shardcache_used_memory_bytes",
        "shardcache_maxmemory_bytes",
        "process_resident_memory_bytes",
        "shardcache_shard_keys",
        "shardcache_connected_clients",
        "shardcache_evicted_keys_total",
        "shardcache_expired_keys_total",
    ] {
        assert!(all.contains(wanted), "the dashboard has no query with {wanted}");
    }
    // A rules file is YAML, and JSON is YAML: one recording rule per expression.
    let dir = TempDir::new("shardcache-dashboard-rules");
    let rules = dir.path().join("rules.yml");
    let body: Vec<String> = exprs
        .iter()
        .enumerate()
        .map(|(i, e)| {
            format!(
                "{{\"record\": \"dashboard:query_{i}\", \"expr\": {}}}",
                json_string(e)
            )
        })
        .collect();
    std::fs::write(
        &rules,
        format!(
            "{{\"groups\": [{{\"name\": \"dashboard\", \"rules\": [{}]}}]}}\n",
            body.join(",\n")
        ),
    )
    .expect("write rules");
    let out = run_ok(
        Command::new("promtool")
            .arg("check")
            .arg("rules")
            .arg(&rules),
        Duration::from_secs(60),
    );
    assert!(out.contains("SUCCESS"), "{out}");
}

/// Every metric the dashboard queries is exported by a real server (after a little traffic,
/// so that per-command series exist).
#[test]
fn dashboard_metrics_are_exported() {
    require!("python3");
    let exprs = dashboard_exprs().join("\n");
    let mut names = BTreeSet::new();
    for prefix in ["shardcache_", "process_"] {
        let mut rest = exprs.as_str();
        while let Some(at) = rest.find(prefix) {
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            names.insert(tail[..end].to_string());
            rest = &tail[end..];
        }
    }
    let server = Server::start_with_metrics(&[]);
    let mut s = server.connect();
    for cmd in [&["SET", "k", "v"][..], &["GET", "k"], &["GET", "missing"]] {
        s.write_all(&resp_str(cmd)).expect("write");
    }
    shardcache_tests::read_replies(&mut s, 3);
    let mut m = TcpStream::connect(("127.0.0.1", server.metrics_port())).expect("metrics");
    m.set_read_timeout(Some(Duration::from_secs(10))).ok();
    m.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .expect("request");
    let mut body = String::new();
    m.read_to_string(&mut body).expect("read /metrics");
    // Series present, and families declared (`# TYPE`) that have no series yet (the lock
    // blame series appear with the first contended wait).
    let mut exported: BTreeSet<String> = body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect();
    for l in body.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        let mut w = l.split(' ');
        let (Some(name), Some(kind)) = (w.next(), w.next()) else {
            continue;
        };
        exported.insert(name.to_string());
        if kind == "histogram" {
            for suffix in ["_bucket", "_sum", "_count"] {
                exported.insert(format!("{name}{suffix}"));
            }
        }
    }
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| !exported.contains(n.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries metrics the server does not export: {missing:?}"
    );
}

#[test]
fn kubernetes_sidecar_passes_the_schema_and_has_what_a_sidecar_needs() {
    if !python_yaml() {
        return;
    }
    python(
        r#"
import yaml
docs = [d for d in yaml.safe_load_all(open("docker/kubernetes/sidecar.yaml")) if d]
assert len(docs) == 1 and docs[0]["kind"] in ("Deployment", "Pod"), [d.get("kind") for d in docs]
d = docs[0]
pod = d["spec"]["template"] if d["kind"] == "Deployment" else d
meta, spec = pod["metadata"], pod["spec"]
ann = meta.get("annotations", {})
assert ann.get("prometheus.io/scrape") == "true", ann
assert ann.get("prometheus.io/port") == "9379", ann
assert ann.get("prometheus.io/path") == "/metrics", ann
containers = spec["containers"] + [c for c in spec.get("initContainers", []) if c.get("restartPolicy") == "Always"]
assert len(containers) >= 2, "an app container and the shardcache sidecar"
sc = [c for c in containers if c["name"] == "shardcache"]
assert len(sc) == 1, [c["name"] for c in containers]
sc = sc[0]
assert sc["resources"]["limits"]["memory"], "a memory limit (maxmemory defaults to 75% of it)"
for probe in ("readinessProbe", "livenessProbe"):
    p = sc[probe]
    cmd = p.get("exec", {}).get("command", [])
    assert cmd[:2] == ["/shardcache", "health"] or "tcpSocket" in p, (probe, p)
sec = {**spec.get("securityContext", {}), **sc["securityContext"]}
assert sec["runAsNonRoot"] is True and sec["readOnlyRootFilesystem"] is True, sec
assert sec.get("allowPrivilegeEscalation") is False, sec
assert any(p["containerPort"] == 9379 for p in sc["ports"]), sc["ports"]
env = {e["name"]: e.get("value") for e in sc.get("env", [])}
shutdown = int(env.get("SHARDCACHE_SHUTDOWN_TIMEOUT", "8"))
grace = spec["terminationGracePeriodSeconds"]
assert grace > shutdown, f"terminationGracePeriodSeconds {grace} must exceed the shutdown timeout {shutdown}"
print("sidecar ok")
"#,
        &[],
    );
    if !have("kubernetes-validate") {
        shardcache_tests::skip("the schema check: kubernetes-validate is not installed (pip)");
        return;
    }
    let out = run_ok(
        Command::new("kubernetes-validate")
            .current_dir(repo_root())
            .args(["--strict", "docker/kubernetes/sidecar.yaml"]),
        Duration::from_secs(120),
    );
    assert!(out.contains("passed"), "{out}");
}

/// The properties of docker/Dockerfile that users and the container test rely on, checked
/// without building it.
#[test]
fn dockerfile_keeps_its_contract() {
    let root = repo_root();
    let text = std::fs::read_to_string(root.join("docker/Dockerfile")).expect("read Dockerfile");
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    let froms: Vec<&&str> = lines.iter().filter(|l| l.starts_with("FROM ")).collect();
    assert!(
        froms.first().is_some_and(|f| f.ends_with(" AS build")),
        "the first stage is named `build` (the container test replaces it): {froms:?}"
    );
    assert_eq!(froms.last().map(|f| **f), Some("FROM scratch"));
    for needed in [
        "COPY --from=build /out/shardcache /shardcache",
        "USER 65532:65532",
        "EXPOSE 6379 9379",
        "STOPSIGNAL SIGTERM",
        r#"ENTRYPOINT ["/shardcache"]"#,
    ] {
        assert!(lines.contains(&needed), "Dockerfile lacks `{needed}`");
    }
    assert!(
        text.contains(r#"CMD ["/shardcache", "health""#),
        "exec-form HEALTHCHECK"
    );
    assert!(text.contains("SHARDCACHE_BIND=0.0.0.0"));
    assert!(text.contains("SHARDCACHE_METRICS_ADDR=0.0.0.0:9379"));
    assert!(text.contains("+crt-static"));
    // When the hardening work adds protected mode, the image must turn it off, or published
    // ports would refuse every client.
    let config = std::fs::read_to_string(root.join("config/src/lib.rs")).expect("config");
    if config.contains("SHARDCACHE_PROTECTED_MODE") || config.contains("\"protected-mode\"") {
        assert!(
            lines
                .iter()
                .any(|l| l.contains("SHARDCACHE_PROTECTED_MODE=no")),
            "config has --protected-mode: docker/Dockerfile must set SHARDCACHE_PROTECTED_MODE=no"
        );
    }
    let ignore = std::fs::read_to_string(root.join(".dockerignore")).expect(".dockerignore");
    assert!(
        ignore.lines().any(|l| l.trim() == "target/"),
        ".dockerignore must skip target/"
    );
    assert!(
        ignore.lines().any(|l| l.trim().starts_with(".git")),
        ".dockerignore must skip .git"
    );
}

/// A JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
