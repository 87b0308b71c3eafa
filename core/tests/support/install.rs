//! Installs the interop peers' libraries from the registries for a test crate:
//! the pinned Python `websockets` into a venv and Node's `ws` with npm.
//!
//! Shared by `core/tests/interop.rs` (as `#[path = "support/install.rs"]`) and
//! `tools/tests/interop.rs` (as `#[path = "../../core/tests/support/install.rs"]`).
//! It sits in a subfolder so cargo does not build it as a test target of its own,
//! and it depends on nothing but std and libc.
//!
//! Each caller passes its own interop folder (holding `requirements.txt` and
//! `package.json`) and its own install root under `target/tmp/`, so the two
//! crates never share a venv. Guarantees:
//! - idempotent: a stamp file beside each install holds the `requirements.txt`
//!   or `package.json` it was built from; a changed file rebuilds the install;
//! - exclusive: an `flock` beside each install keeps two test processes from
//!   installing into the same directory at once;
//! - bounded: every install step is killed after [`INSTALL_TIMEOUT`], and
//!   waiting for the lock after three times that;
//! - loud: a missing toolchain (python3, node, npm) or a failed step panics with
//!   the file or command, the reason, and the step's output; never a skip.

use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Time allowed for one install step (venv creation, pip install, npm install).
pub const INSTALL_TIMEOUT: Duration = Duration::from_secs(120);

/// Creates `root/venv` with the packages of `interop_dir/requirements.txt` (the
/// pinned `websockets`) and returns its python. `$PYTHON` names the interpreter
/// that creates the venv (default `python3`).
pub fn install_python(interop_dir: &Path, root: &Path) -> PathBuf {
    let venv = root.join("venv");
    let python = venv.join("bin").join("python");
    let requirements = interop_dir.join("requirements.txt");
    let wanted = read_file(&requirements);

    let _lock = InstallLock::acquire(&root.join("venv.lock"));
    let stamp = root.join("venv.stamp");
    if python.exists() && fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return python;
    }
    let python3 = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string());
    let _ = fs::remove_dir_all(&venv);
    let _ = fs::remove_file(&stamp);
    run_install(
        Command::new(&python3).args(["-m", "venv"]).arg(&venv),
        &format!("creating a venv with `{python3} -m venv` (needs Python 3.9+ with the venv module; on Debian: apt-get install python3-venv)"),
    );
    run_install(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--quiet",
                "-r",
            ])
            .arg(&requirements),
        &format!(
            "installing the Python packages (pip install -r {})",
            requirements.display()
        ),
    );
    run_install(
        Command::new(&python).args(["-c", "import websockets; print(websockets.version.version)"]),
        "importing websockets from the fresh venv",
    );
    write_stamp(&stamp, &wanted);
    python
}

/// Installs `interop_dir/package.json` (the pinned `ws`) into `root/node` and
/// returns its `node_modules`, for `NODE_PATH`.
pub fn install_node(interop_dir: &Path, root: &Path) -> PathBuf {
    let prefix = root.join("node");
    let node_modules = prefix.join("node_modules");
    let package_json = interop_dir.join("package.json");
    let wanted = read_file(&package_json);

    run_install(
        Command::new("node").arg("--version"),
        "running `node --version` (Node.js 18+ must be on PATH)",
    );
    let _lock = InstallLock::acquire(&root.join("node.lock"));
    let stamp = root.join("node.stamp");
    if node_modules.join("ws").join("package.json").exists()
        && fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str())
    {
        return node_modules;
    }
    let _ = fs::remove_dir_all(&prefix);
    let _ = fs::remove_file(&stamp);
    fs::create_dir_all(&prefix)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", prefix.display()));
    fs::copy(&package_json, prefix.join("package.json")).unwrap_or_else(|e| {
        panic!(
            "cannot copy {} into {}: {e}",
            package_json.display(),
            prefix.display()
        )
    });
    run_install(
        Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&prefix),
        &format!(
            "installing the Node packages (npm install of {}; npm must be on PATH)",
            package_json.display()
        ),
    );
    assert!(
        node_modules.join("ws").join("package.json").exists(),
        "npm install finished but {} has no ws",
        node_modules.display()
    );
    write_stamp(&stamp, &wanted);
    node_modules
}

fn read_file(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn write_stamp(stamp: &Path, contents: &str) {
    fs::write(stamp, contents).unwrap_or_else(|e| panic!("cannot write {}: {e}", stamp.display()));
}

/// Runs an install step under `INSTALL_TIMEOUT`; any failure panics with `what`
/// and the step's output.
fn run_install(cmd: &mut Command, what: &str) {
    let described = format!("{cmd:?}");
    let mut child = match cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => panic!("interop setup failed: {what}: cannot run {described}: {e}"),
    };
    let stdout = spawn_reader(child.stdout.take().expect("piped stdout"));
    let stderr = spawn_reader(child.stderr.take().expect("piped stderr"));
    let status = wait_timeout(&mut child, INSTALL_TIMEOUT);
    if status.is_none() {
        kill_and_reap(&mut child);
    }
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    match status {
        Some(s) if s.success() => {}
        Some(s) => panic!(
            "interop setup failed: {what}\n$ {described}\nexited with {s}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
        ),
        None => panic!(
            "interop setup failed: {what}\n$ {described}\nkilled after {INSTALL_TIMEOUT:?} (timeout)\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
        ),
    }
}

/// An exclusive `flock` on a file next to an install directory, so two test
/// processes (nextest runs each test in its own) never install into the same
/// directory at once. Released when dropped (the file is closed).
struct InstallLock {
    _file: File,
}

impl InstallLock {
    fn acquire(path: &Path) -> InstallLock {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .unwrap_or_else(|e| panic!("cannot open lock file {}: {e}", path.display()));
        // Bounded: whoever holds it is itself bounded by INSTALL_TIMEOUT per step.
        let deadline = Instant::now() + INSTALL_TIMEOUT * 3;
        while !try_flock_exclusive(&file) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for install lock {}",
                path.display()
            );
            thread::sleep(Duration::from_millis(100));
        }
        InstallLock { _file: file }
    }
}

fn try_flock_exclusive(file: &File) -> bool {
    // SAFETY: flock only reads the descriptor number; `file` keeps it open for
    // the duration of the call.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

// ---------------------------------------------------------------- processes
//
// Public so that an including test file can bound its own child processes the
// same way instead of keeping a second copy.

/// Kills `child` (SIGKILL) and reaps it, waiting at most 5 s.
pub fn kill_and_reap(child: &mut Child) {
    let _ = child.kill();
    let _ = wait_timeout(child, Duration::from_secs(5));
}

/// The exit status of `child`, or `None` if it is still running after `timeout`
/// (it is left running).
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            _ => return None,
        }
    }
}

/// Reads `pipe` to its end on a thread (so a child never blocks on a full
/// pipe); the handle yields the text, lossily decoded.
pub fn spawn_reader(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}
