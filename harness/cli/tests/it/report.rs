//! The report: its tables against a snapshot, and every chart it names
//! present on disk and inlined in the HTML.

use std::path::Path;

use crate::common::{harness, scratch, serial, show};

/// A small sweep folder with fixed figures, written by hand.
fn fixture(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let w = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
    w(
        "sweep.json",
        r#"{"name": "seed-table", "description": "The seed's table", "shuffle_seed": 0,
            "capacities": {"reuseport-w4-k1": 31000.4},
            "meta": {"kernel_release": "6.18.0", "cpu_count": 2, "cpu_model": "Test CPU", "harness_version": "0.1.0",
                     "git_revision": "abc", "started_at_utc": "2026-11-26T00:00:00Z", "command_line": ["harness", "reproduce"],
                     "sysctls": {"net.core.somaxconn": "4096"}}}"#,
    );
    w(
        "scenario.toml",
        "# Question: is it fair?\n# Second line.\nname = \"seed-table\"\n",
    );
    w(
        "runs.csv",
        "run_id,point,repetition,model,conn_per_s,jain,max_min_ratio,conserved\n\
         p000-r00,0,0,shared-epoll,14000.5,0.791234,5.53,true\n\
         p001-r00,1,0,reuseport,15000,0.999,1.07,true\n\
         p001-r01,1,1,reuseport,15500,0.998,1.08,false\n",
    );
    w(
        "workers.csv",
        "run_id,point,repetition,worker,accepted\n\
         p000-r00,0,0,0,100\np000-r00,0,0,1,0\n\
         p001-r00,1,0,0,60\np001-r00,1,0,1,40\n\
         p001-r01,1,1,0,50\np001-r01,1,1,1,50\n",
    );
    w(
        "aggregate.csv",
        "point,label,model,n,conn_per_s_mean,conn_per_s_sd,conn_per_s_ci_low,conn_per_s_ci_high,jain_mean,jain_sd,jain_ci_low,jain_ci_high,max_min_ratio_mean,max_min_ratio_sd,max_min_ratio_ci_low,max_min_ratio_ci_high,p99_us_mean,p99_us_sd,p99_us_ci_low,p99_us_ci_high\n\
         0,model=shared-epoll,shared-epoll,1,14000.5,,,,0.7912,,,,5.53,,,,254,,,\n\
         1,model=reuseport,reuseport,2,15250,353.55,12073.4,18426.6,0.9985,0.0007,0.9921,1.0049,1.075,0.007,1.0115,1.1385,300.5,10,210.6,390.4\n",
    );
}

#[test]
fn report_tables_match_the_snapshot() {
    let dir = scratch("report-fixture");
    fixture(&dir);
    let content = report::document::content(&dir, &[]).unwrap();
    assert_eq!(content.question, "Question: is it fair? Second line.");
    assert!(content.environment.iter().any(|(k, v)| k == "kernel" && v == "6.18.0"));
    let tables: String = content.tables.iter().map(|t| t.markdown() + "\n").collect();
    let snapshot = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/report-tables.md");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&snapshot, &tables).unwrap();
    }
    let expected = std::fs::read_to_string(&snapshot).expect("snapshot (UPDATE_SNAPSHOTS=1 writes it)");
    assert_eq!(
        tables, expected,
        "report tables changed; rerun with UPDATE_SNAPSHOTS=1 if that is intended"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_reproduce_report_embeds_every_chart_it_names() {
    let _g = serial();
    let out = scratch("report-reproduce");
    let o = harness()
        .args(["reproduce", "--connections", "1500", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", show(&o));
    let md = std::fs::read_to_string(out.join("REPORT.md")).unwrap();
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    for needle in [
        "## The question",
        "## Environment",
        "seed (Node.js, the article)",
        "14561 / 8329 / 2356 / 4885",
    ] {
        assert!(md.contains(needle), "REPORT.md lacks {needle:?}");
    }
    // Every image the Markdown links exists, and every chart drawn is linked.
    let linked: Vec<&str> = md
        .lines()
        .filter_map(|l| l.strip_prefix("![")?.split("](").nth(1)?.strip_suffix(')'))
        .collect();
    assert!(linked.len() >= 4, "{linked:?}");
    for l in &linked {
        assert!(out.join(l).is_file(), "REPORT.md links {l}, which does not exist");
    }
    let drawn: Vec<String> = std::fs::read_dir(out.join("charts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".svg"))
        .collect();
    assert_eq!(drawn.len(), linked.len(), "charts drawn {drawn:?} vs linked {linked:?}");
    // The HTML stands alone: one inline SVG per chart, no links to files.
    assert_eq!(html.matches("<svg").count(), linked.len());
    // (An attribute pointing into charts/, not any mention: the command
    // line in the environment table may hold a path with "charts/".)
    for attr in ["src=\"charts/", "href=\"charts/"] {
        assert!(
            !html.contains(attr),
            "report.html refers to chart files instead of inlining them"
        );
    }
    for name in &drawn {
        let stem = name.trim_end_matches(".svg");
        assert!(
            html.contains(&format!("<figure id=\"{stem}\">")),
            "report.html lacks {stem}"
        );
    }
    let _ = std::fs::remove_dir_all(out);
}
