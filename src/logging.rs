//! Log lines the engines parse: `--log FILE --log-format json` gives one JSON object per line
//! (`level`, `msg`, `time`); text is logrus-style `time=… level=… msg=…`.
//!
//! Nothing of brig's may reach a container's stdio. Without `--log` our lines go to stderr,
//! which the container's process inherits; so in a cloned child (init, an exec'd process) the
//! library diverts them to the parent over the sync socket
//! (`libcontainer::process::sync::divert_stderr_line`). A log file is written directly from
//! both sides. The process-wide setup is the CLI's; the library only emits `tracing` events.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::SystemTime;

use anyhow::Result;
use libcontainer::error::Context;
use libcontainer::process::sync::divert_stderr_line;
use libcontainer::timestamp::rfc3339_nanos;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context as LayerContext, Layer};
use tracing_subscriber::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    /// `error: msg` on a terminal: text format when no log file is given.
    Human,
}

struct Logger {
    sink: Mutex<Box<dyn Write + Send>>,
    /// The sink is stderr (not a `--log` file).
    to_stderr: bool,
    format: Format,
    max: Level,
}

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0 = value.to_string();
        }
    }
}

/// One log line, without the newline.
pub fn format_line(format: Format, level: &Level, message: &str, time: SystemTime) -> String {
    let level = level.as_str().to_ascii_lowercase();
    let time = rfc3339_nanos(time);
    match format {
        Format::Json => {
            serde_json::json!({"level": level, "msg": message, "time": time}).to_string()
        }
        Format::Text => format!("time={time:?} level={level} msg={message:?}"),
        Format::Human => format!("{level}: {message}"),
    }
}

impl<S: Subscriber> Layer<S> for Logger {
    fn on_event(&self, event: &Event<'_>, _ctx: LayerContext<'_, S>) {
        if *event.metadata().level() > self.max {
            return;
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        if self.to_stderr {
            let level = event.metadata().level().as_str().to_ascii_lowercase();
            if divert_stderr_line(&level, &message.0) {
                return;
            }
        }
        let line = format_line(
            self.format,
            event.metadata().level(),
            &message.0,
            SystemTime::now(),
        );
        if let Ok(mut sink) = self.sink.lock() {
            let _ = writeln!(sink, "{line}");
        }
    }
}

/// Route tracing events to `path` (appended) or stderr. Debug lines only with `debug`; on
/// stderr they come in logrus' text format as runc's do, other lines as `level: message`.
pub fn init(path: Option<&Path>, format: Format, debug: bool) -> Result<()> {
    let format = match (path, format) {
        (None, Format::Text) if !debug => Format::Human,
        (_, format) => format,
    };
    let sink: Box<dyn Write + Send> = match path {
        Some(path) => Box::new(
            File::options()
                .create(true)
                .append(true)
                .open(path)
                .ctx(|| format!("open log file {}", path.display()))?,
        ),
        None => Box::new(std::io::stderr()),
    };
    let logger = Logger {
        sink: Mutex::new(sink),
        to_stderr: path.is_none(),
        format,
        max: if debug { Level::DEBUG } else { Level::INFO },
    };
    let _ = tracing_subscriber::registry().with(logger).try_init();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn json_and_text_lines() {
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let json = format_line(Format::Json, &Level::ERROR, "open \"x\": no such file", t);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "open \"x\": no such file");
        assert_eq!(v["time"], "2023-11-14T22:13:20.000000000Z");
        let text = format_line(Format::Text, &Level::WARN, "a b", t);
        assert_eq!(
            text,
            "time=\"2023-11-14T22:13:20.000000000Z\" level=warn msg=\"a b\""
        );
    }
}
