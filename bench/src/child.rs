//! Child processes of this same executable, run as one of its subcommands (a receiver, a
//! worker, a run of its own): how each is started and how its first line is read.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use crate::Result;

/// A child's standard output, line by line.
pub(crate) type Output = Lines<BufReader<ChildStdout>>;

/// Starts this executable with the arguments (and environment) `configure` gives it; `what`
/// names the child in errors ("a worker"). Its stdout is piped to the returned lines, its
/// stderr is ours, its stdin is `stdin` (piped: the child exits when this process ends and
/// the pipe closes); it is killed when dropped.
pub(crate) fn spawn_child(
    what: &str,
    stdin: Stdio,
    configure: impl FnOnce(&mut Command),
) -> Result<(Child, Output)> {
    let exe = std::env::current_exe()
        .map_err(|e| format!("cannot find this executable to start {what}: {e}"))?;
    let mut command = Command::new(exe);
    configure(&mut command);
    let mut child = command
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {what}: {e}"))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| format!("the stdout of {what} is not piped"))?;
    Ok((child, BufReader::new(stdout).lines()))
}

/// The child's next line, waiting at most `limit`; an error if it exits or stalls first.
pub(crate) async fn next_line(output: &mut Output, what: &str, limit: Duration) -> Result<String> {
    let line = tokio::time::timeout(limit, output.next_line())
        .await
        .map_err(|_| format!("{what} wrote nothing within {limit:?}"))?
        .map_err(|e| format!("cannot read the output of {what}: {e}"))?
        .ok_or_else(|| format!("{what} exited before writing its line"))?;
    Ok(line)
}
