//! The figures of a run, as Markdown tables (printed and written) and JSON.

use std::{fmt::Write as _, path::PathBuf};

use serde_json::{Map, Value, json};

/// One table.
#[derive(Debug, Clone)]
pub struct Table {
    pub title: String,
    pub intro: Vec<String>,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub notes: Vec<String>,
}

impl Table {
    pub fn new(title: &str, header: &[&str]) -> Self {
        Self {
            title: title.to_owned(),
            intro: Vec::new(),
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "### {}\n", self.title);
        for line in &self.intro {
            let _ = writeln!(out, "{line}");
        }
        if !self.intro.is_empty() {
            out.push('\n');
        }
        let _ = writeln!(out, "| {} |", self.header.join(" | "));
        let _ = writeln!(
            out,
            "|{}|",
            self.header
                .iter()
                .enumerate()
                .map(|(i, _)| if i == 0 { "---" } else { "---:" })
                .collect::<Vec<_>>()
                .join("|")
        );
        for row in &self.rows {
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
        for note in &self.notes {
            let _ = writeln!(out, "\n{note}");
        }
        out
    }
}

/// The whole run.
#[derive(Debug, Default)]
pub struct Report {
    pub tables: Vec<Table>,
    pub json: Map<String, Value>,
    pub context: Vec<(String, String)>,
}

impl Report {
    pub fn add(&mut self, key: &str, table: Table, value: Value) {
        self.tables.push(table);
        self.json.insert(key.to_owned(), value);
    }

    pub fn markdown(&self, scenario: &str) -> String {
        let mut out = format!("## storage-bench `{scenario}`\n\n");
        for (k, v) in &self.context {
            let _ = writeln!(out, "- {k}: {v}");
        }
        out.push('\n');
        for table in &self.tables {
            out.push_str(&table.markdown());
            out.push('\n');
        }
        out
    }

    /// Writes `bench/results/<scenario>-<date>.{json,md}`, and for a `complete` run of `all`
    /// (only) also `bench/results/latest.md`: never one scenario alone, nor a run that failed.
    pub fn write(&self, scenario: &str, complete: bool) -> anyhow::Result<Vec<PathBuf>> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("results");
        std::fs::create_dir_all(&dir)?;
        let date = chrono::Utc::now().format("%Y-%m-%d").to_string();
        let json_path = dir.join(format!("{scenario}-{date}.json"));
        let md_path = dir.join(format!("{scenario}-{date}.md"));
        let context: Map<String, Value> = self
            .context
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let doc = json!({
            "scenario": scenario,
            "context": context,
            "results": self.json,
        });
        std::fs::write(&json_path, serde_json::to_string_pretty(&doc)? + "\n")?;
        let md = self.markdown(scenario);
        std::fs::write(&md_path, &md)?;
        let mut written = vec![json_path, md_path];
        if scenario == "all" && complete {
            let latest = dir.join("latest.md");
            std::fs::write(&latest, &md)?;
            written.push(latest);
        }
        Ok(written)
    }
}

pub fn f1(x: f64) -> String {
    format!("{x:.1}")
}

pub fn f2(x: f64) -> String {
    format!("{x:.2}")
}

pub fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}
