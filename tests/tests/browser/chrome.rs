//! A small harness around chromiumoxide for the browser tests: find a chromium, launch it headless
//! with its own throw-away profile, and read and drive the page by `data-testid`.
//!
//! [`Chrome`] owns the browser process. Dropping it (also while a test panics) kills the browser
//! and every process it started (renderers, GPU and zygote helpers), found through `/proc`.
//! [`Tab`] reads the DOM with `Runtime.evaluate` and polls it until a condition holds or a
//! deadline passes; when a wait fails it saves a screenshot `failed-NAME.png` beside the others.

use chromiumoxide::browser::BrowserConfig;
use chromiumoxide::cdp::browser_protocol::page::CaptureScreenshotFormat;
use chromiumoxide::cdp::js_protocol::runtime::EvaluateParams;
use chromiumoxide::handler::viewport::Viewport;
use chromiumoxide::page::ScreenshotParams;
use chromiumoxide::{Browser, Page};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::time::Instant;

/// The window and viewport of every test.
pub const WIDTH: u32 = 1400;
pub const HEIGHT: u32 = 900;
/// How long one DOM condition may take to come true. Generous: the machine is loaded, and no test
/// asserts on speed.
pub const DOM_TIMEOUT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(50);

/// Writes a line to the real stderr, past the test harness's capture, so a skip is always seen.
pub fn say(msg: &str) {
    let _ = writeln!(std::io::stderr(), "[browser] {msg}");
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// The browser to drive: `HUASHI_CHROMIUM` or `CHROME` (a path or a name on PATH), else
/// `chromium`, `chromium-browser` or `google-chrome` on PATH. `None` means "skip this test"; on CI
/// (`CI=true`) a missing browser fails the test instead.
pub fn browser_or_skip() -> Option<PathBuf> {
    for var in ["HUASHI_CHROMIUM", "CHROME"] {
        let Ok(value) = std::env::var(var) else { continue };
        if value.trim().is_empty() {
            continue;
        }
        let p = PathBuf::from(value.trim());
        let found = if p.components().count() > 1 {
            Some(p.clone()).filter(|p| is_executable(p))
        } else {
            on_path(value.trim())
        };
        return Some(found.unwrap_or_else(|| panic!("{var}={} is not an executable browser", p.display())));
    }
    if let Some(p) = ["chromium", "chromium-browser", "google-chrome"].into_iter().find_map(on_path) {
        return Some(p);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "no chromium browser found on CI: install chromium (`apt-get install -y chromium`) or set HUASHI_CHROMIUM \
             to its path"
        );
    }
    say("skipped: no chromium browser found (set HUASHI_CHROMIUM or install chromium)");
    None
}

/// `<workspace>/target/screenshots` (or `$CARGO_TARGET_DIR/screenshots`), created if needed.
pub fn screenshot_dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the tests crate is in the workspace");
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        Some(dir) => workspace.join(dir),
        None => workspace.join("target"),
    };
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

/// A headless chromium with its own temporary profile. Killed, with all its children, on drop.
pub struct Chrome {
    browser: Option<Browser>,
    handler: Option<tokio::task::JoinHandle<()>>,
    pid: Option<u32>,
    /// The browser's processes as last seen, for `Drop` to make sure they are gone.
    known: Vec<Proc>,
    _profile: tempfile::TempDir,
}

impl Chrome {
    pub async fn launch(exe: &Path) -> Chrome {
        let profile = tempfile::Builder::new().prefix("huashi-chromium-").tempdir().expect("profile tempdir");
        let config = BrowserConfig::builder()
            .chrome_executable(exe)
            .new_headless_mode()
            .no_sandbox()
            .user_data_dir(profile.path())
            .window_size(WIDTH, HEIGHT)
            .viewport(Viewport { width: WIDTH, height: HEIGHT, device_scale_factor: Some(1.0), ..Viewport::default() })
            .launch_timeout(Duration::from_secs(60))
            .request_timeout(Duration::from_secs(30))
            // Keys without the leading dashes: chromiumoxide adds them.
            .args(["disable-gpu", "disable-dev-shm-usage", "disable-background-networking", "no-first-run"])
            .args(["no-default-browser-check", "disable-extensions", "hide-scrollbars", "mute-audio"])
            .build()
            .unwrap_or_else(|e| panic!("browser config for {}: {e}", exe.display()));
        let (mut browser, mut handler) =
            Browser::launch(config).await.unwrap_or_else(|e| panic!("launching {} failed: {e}", exe.display()));
        let pid = browser.get_mut_child().and_then(|c| c.as_mut_inner().id());
        // The handler drives the DevTools connection: it must be polled for anything to happen.
        let handler = tokio::spawn(async move { while handler.next().await.is_some() {} });
        Chrome { browser: Some(browser), handler: Some(handler), pid, known: Vec::new(), _profile: profile }
    }

    /// A new tab at `url`, with a collector of uncaught errors installed before the page's scripts.
    pub async fn open(&self, url: &str) -> Tab {
        let browser = self.browser.as_ref().expect("browser running");
        let page = browser.new_page("about:blank").await.expect("new page");
        page.evaluate_on_new_document(
            "window.__errors = []; \
             addEventListener('error', (e) => __errors.push('error: ' + (e.message || e.type))); \
             addEventListener('unhandledrejection', (e) => __errors.push('unhandled rejection: ' + \
               (e.reason && (e.reason.stack || e.reason.message || JSON.stringify(e.reason)) || e.reason)));",
        )
        .await
        .expect("install the error collector");
        page.goto(url).await.unwrap_or_else(|e| panic!("goto {url}: {e}"));
        Tab { page }
    }

    /// Whether the browser process is still our unreaped child (so its pid is still its own).
    fn running(&mut self) -> bool {
        self.browser.as_mut().and_then(Browser::get_mut_child).is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Closes the browser politely; `Drop` then kills whatever of it is left.
    pub async fn close(mut self) {
        if let (true, Some(pid)) = (self.running(), self.pid) {
            self.known = tree(pid);
        }
        if let Some(browser) = self.browser.as_mut() {
            let _ = tokio::time::timeout(Duration::from_secs(5), browser.close()).await;
            if tokio::time::timeout(Duration::from_secs(5), browser.wait()).await.is_err() {
                let _ = browser.kill().await;
            }
        }
    }
}

/// A process as `/proc/PID/stat` describes it: its pid and its start time (in clock ticks after
/// boot), which tells it apart from a later process that got the same pid.
type Proc = (u32, u64);

/// The parent and start time of `pid`, from `/proc/PID/stat`.
fn stat(pid: u32) -> Option<(u32, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid … starttime …": comm may hold spaces and parentheses.
    let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
    Some((fields.get(1)?.parse().ok()?, fields.get(19)?.parse().ok()?))
}

/// `root` and every process below it, while `root` is still our unreaped child.
fn tree(root: u32) -> Vec<Proc> {
    let mut all: Vec<(u32, u32, u64)> = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
            if let Some((ppid, start)) = stat(pid) {
                all.push((pid, ppid, start));
            }
        }
    }
    let mut out: Vec<Proc> = all.iter().filter(|p| p.0 == root).map(|p| (p.0, p.2)).collect();
    let mut i = 0;
    while i < out.len() {
        let parent = out[i].0;
        for &(pid, ppid, start) in &all {
            if ppid == parent && !out.iter().any(|p| p.0 == pid) {
                out.push((pid, start));
            }
        }
        i += 1;
    }
    out
}

/// SIGKILLs each process that is still the one recorded (same pid, same start time).
fn kill_all(procs: &[Proc]) {
    for &(pid, start) in procs {
        if stat(pid).is_some_and(|(_, now)| now == start) {
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
            }
        }
    }
}

impl Drop for Chrome {
    fn drop(&mut self) {
        // While the browser is our child and not yet reaped its pid is its own, and so are the
        // pids of the processes below it. Renderers, the GPU process and the zygote go with it.
        if let (true, Some(pid)) = (self.running(), self.pid) {
            self.known.extend(tree(pid));
        }
        kill_all(&self.known);
        // The child was spawned with kill_on_drop; the runtime reaps it.
        drop(self.browser.take());
        if let Some(handler) = self.handler.take() {
            handler.abort();
        }
    }
}

/// What [`Tab::probe`] reads of one element.
#[derive(Clone, Debug)]
pub struct Probe {
    /// `textContent`, trimmed, with runs of white space as one space.
    pub text: String,
    /// The `data-*` attributes.
    pub data: serde_json::Map<String, Value>,
    pub disabled: bool,
    pub visible: bool,
    /// An input's `value`.
    pub value: Option<String>,
}

impl Probe {
    pub fn data(&self, key: &str) -> Option<&str> {
        self.data.get(key).and_then(Value::as_str)
    }
}

pub fn selector(testid: &str) -> String {
    format!("[data-testid=\"{testid}\"]")
}

/// One page of the web app.
pub struct Tab {
    pub page: Page,
}

impl Tab {
    /// Evaluates a JavaScript expression; its value as JSON (`null` for `undefined`).
    pub async fn eval(&self, expression: &str) -> Value {
        let params = EvaluateParams::builder()
            .expression(expression)
            .await_promise(true)
            .return_by_value(true)
            .build()
            .expect("EvaluateParams");
        match self.page.evaluate(params).await {
            Ok(result) => result.value().cloned().unwrap_or(Value::Null),
            Err(e) => panic!("evaluating {expression:?} in the page: {e}"),
        }
    }

    /// The element `[data-testid=ID]`, or None when it is not in the DOM.
    pub async fn probe(&self, testid: &str) -> Option<Probe> {
        let js = format!(
            "(() => {{ const el = document.querySelector({sel}); if (!el) return null; \
               return {{ text: el.textContent.replace(/\\s+/g, ' ').trim(), data: {{ ...el.dataset }}, \
                 disabled: Boolean(el.disabled), \
                 visible: el.checkVisibility ? el.checkVisibility() : el.offsetParent !== null, \
                 value: typeof el.value === 'string' ? el.value : null }}; }})()",
            sel = json!(selector(testid))
        );
        let v = self.eval(&js).await;
        if v.is_null() {
            return None;
        }
        Some(Probe {
            text: v["text"].as_str().unwrap_or_default().to_string(),
            data: v["data"].as_object().cloned().unwrap_or_default(),
            disabled: v["disabled"].as_bool().unwrap_or(false),
            visible: v["visible"].as_bool().unwrap_or(false),
            value: v["value"].as_str().map(str::to_string),
        })
    }

    /// Polls `testid` until `check` returns Some (the element present), or panics after `timeout`
    /// with what was last seen and a screenshot `failed-WHAT.png`.
    pub async fn wait_for<T>(
        &self,
        testid: &str,
        what: &str,
        timeout: Duration,
        check: impl Fn(&Probe) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            let seen = self.probe(testid).await;
            if let Some(t) = seen.as_ref().and_then(&check) {
                return t;
            }
            if Instant::now() > deadline {
                let name = format!("failed-{}", what.replace(|c: char| !c.is_alphanumeric(), "-"));
                let shot = match self.try_screenshot(&name, false).await {
                    Ok(path) => path.display().to_string(),
                    Err(e) => e,
                };
                panic!(
                    "the page never showed {what} within {timeout:?}: [data-testid={testid}] is {seen:?}\n\
                     page errors: {:?}\nscreenshot: {shot}",
                    self.errors().await,
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until `[data-testid=ID]`'s text is exactly `want`.
    pub async fn wait_text(&self, testid: &str, want: &str) -> Probe {
        let what = format!("{testid} = {want}");
        self.wait_for(testid, &what, DOM_TIMEOUT, |p| (p.text == want).then(|| p.clone())).await
    }

    /// Waits until the element is present, visible and enabled.
    pub async fn wait_enabled(&self, testid: &str) -> Probe {
        let what = format!("{testid} enabled");
        self.wait_for(testid, &what, DOM_TIMEOUT, |p| (p.visible && !p.disabled).then(|| p.clone())).await
    }

    /// A real mouse click (DevTools input events at the element's centre), after checking that it
    /// is visible and enabled. The tab is brought to the front first: a tab in the background
    /// never handles the input events, and the click would wait for them until it timed out.
    pub async fn click(&self, testid: &str) {
        self.wait_enabled(testid).await;
        self.page.bring_to_front().await.unwrap_or_else(|e| panic!("bring the tab to the front: {e}"));
        // Into the middle of the viewport: scrolled only as far as its edge, an element ends up
        // under the page's sticky top bar, and the click lands on the bar (a tab) instead.
        self.eval(&format!(
            "document.querySelector({}).scrollIntoView({{ block: 'center', inline: 'center' }})",
            json!(selector(testid))
        ))
        .await;
        let el = self.page.find_element(selector(testid)).await.unwrap_or_else(|e| panic!("find {testid}: {e}"));
        el.click().await.unwrap_or_else(|e| panic!("click {testid}: {e}"));
    }

    /// Clicks into an input, selects what is there and types `text` over it, key by key.
    pub async fn type_into(&self, testid: &str, text: &str) {
        self.click(testid).await;
        self.eval(&format!("document.querySelector({}).select()", json!(selector(testid)))).await;
        let el = self.page.find_element(selector(testid)).await.unwrap_or_else(|e| panic!("find {testid}: {e}"));
        el.type_str(text).await.unwrap_or_else(|e| panic!("type into {testid}: {e}"));
        let what = format!("{testid} holding what was typed");
        self.wait_for(testid, &what, DOM_TIMEOUT, |p| (p.value.as_deref() == Some(text)).then_some(())).await;
    }

    /// Uncaught errors and unhandled rejections the page has had, one per line ("" when none).
    pub async fn errors(&self) -> String {
        let v = self.eval("(window.__errors || []).join('\\n')").await;
        v.as_str().unwrap_or_default().to_string()
    }

    /// Asserts the page had no uncaught error or unhandled rejection.
    pub async fn assert_no_errors(&self) {
        let errors = self.errors().await;
        assert!(errors.is_empty(), "the page had uncaught errors:\n{errors}");
    }

    /// Saves a PNG of the viewport (or, `full`, of the whole page) as `target/screenshots/NAME.png`.
    pub async fn try_screenshot(&self, name: &str, full: bool) -> Result<PathBuf, String> {
        let path = screenshot_dir().join(format!("{name}.png"));
        let params = ScreenshotParams::builder().format(CaptureScreenshotFormat::Png).full_page(full).build();
        let bytes = self.page.save_screenshot(params, &path).await.map_err(|e| format!("{}: {e}", path.display()))?;
        if !bytes.starts_with(b"\x89PNG") {
            return Err(format!("{} is not a PNG", path.display()));
        }
        Ok(path)
    }

    /// Saves a PNG of the viewport as `target/screenshots/NAME.png` and returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        self.try_screenshot(name, false).await.unwrap_or_else(|e| panic!("screenshot {name}: {e}"))
    }

    /// Saves a PNG of the whole page, beyond the viewport.
    pub async fn screenshot_full(&self, name: &str) -> PathBuf {
        self.try_screenshot(name, true).await.unwrap_or_else(|e| panic!("screenshot {name}: {e}"))
    }
}
