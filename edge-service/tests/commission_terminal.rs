//! `kare commission` as a crew sees it in a terminal: driven through tmux (keys sent, the pane
//! captured with its colours). It asks the crew's name, draws a progress bar while it listens to
//! the node, colours each status, and speaks 简体中文 when asked to.
//!
//! tmux comes from `scripts/terminal install` (called by `scripts/test`).

mod commission_support;

use commission_support::*;
use std::process::Command;
use std::time::{Duration, Instant};

struct Tmux {
    session: String,
}

impl Tmux {
    fn start(command: &str) -> Tmux {
        let session = format!("kare-commission-{}", std::process::id());
        let ok = Command::new("tmux")
            .args(["new-session", "-d", "-s", &session, "-x", "160", "-y", "60"])
            .arg(command)
            .status()
            .expect("tmux runs (scripts/terminal install)");
        assert!(ok.success());
        Tmux { session }
    }

    fn keys(&self, literal: &str) {
        let ok = Command::new("tmux")
            .args(["send-keys", "-t", &self.session, "-l", literal])
            .status()
            .unwrap();
        assert!(ok.success());
        Command::new("tmux")
            .args(["send-keys", "-t", &self.session, "Enter"])
            .status()
            .unwrap();
    }

    /// The pane as text, with escape sequences (`-e`) when `escapes`.
    fn pane(&self, escapes: bool) -> String {
        let mut c = Command::new("tmux");
        c.args(["capture-pane", "-p", "-J", "-t", &self.session]);
        if escapes {
            c.arg("-e");
        }
        String::from_utf8_lossy(&c.output().unwrap().stdout).into_owned()
    }

    /// Waits (polling the pane: the only way to see a terminal) until `pred` holds; the whole
    /// pane on time-out.
    fn until(&self, what: &str, within: Duration, pred: impl Fn(&str) -> bool) -> String {
        let end = Instant::now() + within;
        loop {
            let p = self.pane(true);
            if pred(&p) {
                return p;
            }
            assert!(Instant::now() < end, "no {what} within {within:?}:\n{p}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.session])
            .status();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crew_is_asked_its_name_sees_progress_and_colours_in_chinese() {
    let dir = tempfile::tempdir().unwrap();
    let node = SimNode::start(&scenario(""));
    let desk = Desk::start(200).await;
    let config = dir.path().join("kare.toml");
    std::fs::write(
        &config,
        base_config(dir.path(), &desk.url, &node.port, 230.0),
    )
    .unwrap();
    let done = dir.path().join("exit-status");
    let cmd = format!(
        "{} commission --lang zh-CN --config {} --state-dir {} --record {} --node-seconds 4; echo $? > {}; sleep 600",
        env!("CARGO_BIN_EXE_kare"),
        config.display(),
        dir.path().display(),
        dir.path().join("record.json").display(),
        done.display()
    );
    let t = Tmux::start(&cmd);
    t.until("the name prompt", Duration::from_secs(20), |p| {
        p.contains("您的姓名")
    });
    t.keys("王工");
    // A progress bar while it listens to the node: the label, a bar and a percentage.
    let bar = t.until("a progress bar", Duration::from_secs(30), |p| {
        p.contains("正在监听传感节点 node-1") && p.contains('%')
    });
    assert!(bar.contains('['), "{bar}");
    let end = t.until("the summary", Duration::from_secs(60), |p| {
        p.contains("记录已写入")
    });
    // Coloured statuses: green PASS (SGR 32) and yellow WARN (33) in the captured escapes.
    assert!(end.contains("PASS"), "{end}");
    assert!(
        end.contains("\u{1b}[32m") || end.contains("\u{1b}[1m\u{1b}[32m") || end.contains(";32m"),
        "no green in:\n{end:?}"
    );
    assert!(end.contains("相序 A-B-C"), "{end}");
    assert!(end.contains("调试人员 王工"), "{end}");
    let end_of_run = Instant::now() + Duration::from_secs(20);
    while !done.exists() && Instant::now() < end_of_run {
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = std::fs::read_to_string(&done).unwrap_or_default();
    assert_eq!(status.trim(), "0", "{end}");
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("record.json")).unwrap())
            .unwrap();
    assert_eq!(record["record"]["crew"], "王工");
    assert_eq!(record["record"]["lang"], "zh-CN");
}
