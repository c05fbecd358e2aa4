//! How results are shown: aligned tables for people, JSON for scripts, and live
//! progress on a terminal (plain lines when stdout is not one).

use std::io::IsTerminal;
use std::time::Duration;

use comfy_table::{ContentArrangement, Table, presets};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

/// The output format (`--output`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Aligned tables and short lines.
    #[default]
    Table,
    /// The API's JSON, pretty-printed; stable field names.
    Json,
}

/// A column: its heading and the JSON pointer of its value in each item.
pub type Column = (&'static str, &'static str);

/// Prints what commands produce, in the chosen format.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    /// The format.
    pub format: Format,
}

impl Printer {
    /// A list: one row per item of `items` (a JSON array), or the JSON of `whole`.
    pub fn list(&self, whole: &Value, items: &Value, columns: &[Column]) {
        if self.format == Format::Json {
            return json(whole);
        }
        let empty = Vec::new();
        let items = items.as_array().unwrap_or(&empty);
        if items.is_empty() {
            println!("(none)");
            return;
        }
        let mut table = plain_table();
        table.set_header(columns.iter().map(|(heading, _)| *heading));
        for item in items {
            table.add_row(columns.iter().map(|(_, at)| cell(item.pointer(at))));
        }
        println!("{table}");
        if let Some(next) = whole.get("next").and_then(Value::as_str) {
            println!("more: --cursor {next}");
        }
    }

    /// One record: a field per line, or its JSON.
    pub fn record(&self, record: &Value, fields: &[Column]) {
        if self.format == Format::Json {
            return json(record);
        }
        let mut table = plain_table();
        for (heading, at) in fields {
            table.add_row([heading.to_string(), cell(record.pointer(at))]);
        }
        println!("{table}");
    }

    /// The outcome of an action: `message` for people, the answer's JSON for scripts.
    pub fn done(&self, answer: &Value, message: &str) {
        match self.format {
            Format::Json => json(answer),
            Format::Table => println!("{message}"),
        }
    }

    /// A JSON value that is the answer itself (a tool's output, a run's state).
    pub fn value(&self, value: &Value) {
        json(value);
    }

    /// Live progress for a long wait: a spinner with a status line when stdout is a
    /// terminal and the format is a table; plain lines otherwise (nothing at all in
    /// JSON, where only the final answer is printed).
    pub fn progress(&self) -> Progress {
        let bar = (self.format == Format::Table && std::io::stdout().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stdout());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        Progress {
            bar,
            quiet: self.format == Format::Json,
        }
    }
}

/// A long wait being shown (see [`Printer::progress`]).
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    quiet: bool,
}

impl Progress {
    /// Something that happened: a line above the spinner, or a plain line.
    pub fn line(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None if !self.quiet => println!("{line}"),
            None => {}
        }
    }

    /// Where things stand now: the spinner's status (nothing without a terminal).
    pub fn status(&self, status: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(status.to_owned());
        }
    }

    /// Ends the display.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn plain_table() -> Table {
    let mut table = Table::new();
    table
        .load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled);
    table
}

fn json(value: &Value) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(_) => println!("{value}"),
    }
}

/// A JSON value as a table cell: strings bare, lists joined, absent as `-`, long text
/// cut.
pub fn cell(value: Option<&Value>) -> String {
    const LONG: usize = 60;
    let text = match value {
        None | Some(Value::Null) => return "-".to_owned(),
        Some(Value::Array(items)) if items.is_empty() => return "-".to_owned(),
        Some(Value::String(s)) => match chrono::DateTime::parse_from_rfc3339(s) {
            // Times to the second, in UTC: the JSON output keeps them whole.
            Ok(at) => at.to_utc().format("%Y-%m-%d %H:%M:%S").to_string(),
            Err(_) => s.clone(),
        },
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(","),
        Some(other) => other.to_string(),
    };
    if text.chars().count() > LONG {
        let cut: String = text.chars().take(LONG - 1).collect();
        format!("{cut}…")
    } else {
        text
    }
}
