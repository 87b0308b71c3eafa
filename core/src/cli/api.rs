//! `ringcast api …`: the server API from the command line, for operators and
//! scripts. One HTTP/1.1 request per run over a plain TCP connection (the
//! API is meant for loopback or a private network: `api.listen`), the JSON
//! answer printed on stdout; a refusal prints its JSON on stderr and exits 1.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::{json, Value};

/// `ringcast api [--url URL] [--key KEY] COMMAND`.
#[derive(Args)]
pub struct ApiArgs {
    /// Where the server API answers: the main port, or `api.listen`
    /// [env: RINGCAST_API_URL; default http://127.0.0.1:8080]
    #[arg(long)]
    pub url: Option<String>,
    /// An API key, one of `api.key` / `api.key_file` [env: RINGCAST_API_KEY,
    /// which keeps it out of the process list]
    #[arg(long)]
    pub key: Option<String>,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 10)]
    pub timeout: u64,
    #[command(subcommand)]
    pub command: ApiCommand,
}

#[derive(Subcommand)]
pub enum ApiCommand {
    /// Publish DATA (JSON; anything else is sent as a JSON string) to CHANNEL.
    Publish { channel: String, data: String },
    /// Print CHANNEL's history: the newest --limit, or those after --since.
    History {
        channel: String,
        #[arg(long)]
        limit: Option<u64>,
        /// Offset after which to read.
        #[arg(long)]
        since: Option<u64>,
    },
    /// Print who is subscribed to CHANNEL (--stats: only the counts).
    Presence {
        channel: String,
        #[arg(long)]
        stats: bool,
    },
    /// Print the server's counts, version and engine.
    Info,
}

/// Why a request could not be made (the server's refusals are answers).
#[derive(Debug, thiserror::Error)]
pub enum ApiCliError {
    #[error("--url {0}: expected http://HOST:PORT")]
    Url(String),
    #[error("no API key: set RINGCAST_API_KEY or pass --key")]
    NoKey,
    #[error("{url}: {source}")]
    Io { url: String, source: std::io::Error },
    #[error("{0}: the answer is not an HTTP response")]
    Response(String),
}

pub fn run(args: ApiArgs) -> Result<ExitCode, ApiCliError> {
    let (path, body) = match &args.command {
        ApiCommand::Publish { channel, data } => {
            let data: Value = serde_json::from_str(data).unwrap_or_else(|_| json!(data));
            ("/api/publish", json!({"channel": channel, "data": data}))
        }
        ApiCommand::History {
            channel,
            limit,
            since,
        } => {
            let mut body = json!({"channel": channel});
            if let Some(limit) = limit {
                body["limit"] = json!(limit);
            }
            if let Some(since) = since {
                body["since"] = json!({"offset": since});
            }
            ("/api/history", body)
        }
        ApiCommand::Presence { channel, stats } => {
            let path = if *stats {
                "/api/presence_stats"
            } else {
                "/api/presence"
            };
            (path, json!({"channel": channel}))
        }
        ApiCommand::Info => ("/api/info", json!({})),
    };
    let (status, answer) = request(&args, path, &body.to_string())?;
    if (200..300).contains(&status) {
        println!("{answer}");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("ringcast api: HTTP {status}: {answer}");
        Ok(ExitCode::FAILURE)
    }
}

/// Sends one request; the status and the body.
fn request(args: &ApiArgs, path: &str, body: &str) -> Result<(u16, String), ApiCliError> {
    let key = match &args.key {
        Some(key) => key.clone(),
        None => std::env::var("RINGCAST_API_KEY").map_err(|_| ApiCliError::NoKey)?,
    };
    let url = &match &args.url {
        Some(url) => url.clone(),
        None => {
            std::env::var("RINGCAST_API_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into())
        }
    };
    let authority = url
        .strip_prefix("http://")
        .map(|rest| rest.trim_end_matches('/'))
        .filter(|a| !a.is_empty() && !a.contains('/'))
        .ok_or_else(|| ApiCliError::Url(url.clone()))?;
    let io = |source| ApiCliError::Io {
        url: url.clone(),
        source,
    };
    let addr = authority
        .to_socket_addrs()
        .map_err(io)?
        .next()
        .ok_or_else(|| ApiCliError::Url(url.clone()))?;
    let timeout = Duration::from_secs(args.timeout.max(1));
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(io)?;
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: apikey {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        key,
        body.len()
    );
    stream.write_all(request.as_bytes()).map_err(io)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).map_err(io)?;
    let text = String::from_utf8_lossy(&response);
    let (head, answer) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| ApiCliError::Response(url.clone()))?;
    let status = head
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ApiCliError::Response(url.clone()))?;
    Ok((status, answer.to_owned()))
}
