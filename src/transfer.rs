//! `export` and `import`: every record as JSON Lines,
//! `{"username": "…", "dateOfBirth": "YYYY-MM-DD"}`, one per line. Together
//! they back up, restore, and move data between backends.

use anyhow::{Context, bail};
use chrono::{Days, NaiveDate, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};

use crate::{
    domain::{DateOfBirth, Username},
    store::{Record, Store},
};

/// Records written with one durability barrier during import.
const IMPORT_BATCH: usize = 10_000;

#[derive(Serialize, Deserialize)]
struct Line {
    username: String,
    #[serde(rename = "dateOfBirth")]
    date_of_birth: String,
}

/// Writes every record; returns how many.
pub async fn export(store: &dyn Store, output: impl AsyncWrite + Unpin) -> anyhow::Result<u64> {
    let mut output = BufWriter::new(output);
    let mut records = store.export();
    let mut count = 0;
    while let Some(record) = records.next().await {
        let record = record?;
        let line = Line {
            username: record.username.to_string(),
            date_of_birth: record.date_of_birth.to_string(),
        };
        let mut json = serde_json::to_vec(&line)?;
        json.push(b'\n');
        output
            .write_all(&json)
            .await
            .context("cannot write output")?;
        count += 1;
    }
    output.flush().await.context("cannot write output")?;
    Ok(count)
}

/// Reads records and stores them (upserts, so a re-run after a failure is
/// safe); returns how many. Stops at the first invalid line, naming it; the
/// lines before it that were stored stay stored.
pub async fn import(store: &dyn Store, input: impl AsyncRead + Unpin) -> anyhow::Result<u64> {
    // "Before today" in the latest time zone on Earth (UTC+14), so a record
    // stored anywhere yesterday restores anywhere today.
    let latest_today = Utc::now().date_naive() + Days::new(1);
    let mut lines = BufReader::new(input).lines();
    let mut batch = Vec::with_capacity(IMPORT_BATCH);
    let mut count = 0;
    let mut number = 0u64;
    while let Some(text) = lines.next_line().await.context("cannot read input")? {
        number += 1;
        if text.trim().is_empty() {
            continue;
        }
        let record = match parse_line(&text, latest_today) {
            Ok(record) => record,
            Err(err) => {
                // Every line before the bad one is stored, as promised.
                store.put_many(&batch).await?;
                return Err(err.context(format!("line {number} (the lines before it are stored)")));
            }
        };
        batch.push(record);
        if batch.len() == IMPORT_BATCH {
            store.put_many(&batch).await?;
            count += batch.len() as u64;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        store.put_many(&batch).await?;
        count += batch.len() as u64;
    }
    Ok(count)
}

fn parse_line(text: &str, today: NaiveDate) -> anyhow::Result<Record> {
    let Ok(line) = serde_json::from_str::<Line>(text) else {
        bail!("expected {{\"username\": \"…\", \"dateOfBirth\": \"YYYY-MM-DD\"}}");
    };
    Ok(Record {
        username: Username::parse(&line.username)?,
        date_of_birth: DateOfBirth::parse(&line.date_of_birth, today)?,
    })
}
