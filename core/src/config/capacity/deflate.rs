//! permessage-deflate in the capacity model: the zlib state a `[deflate]`
//! table lets the server hold (each worker's shared streams, what context
//! takeover keeps per connection within the budget and the per-worker cap),
//! its lines in the statement, and the README's table of it per tier. The
//! costs are [`super::DEFLATE_STREAM`] and [`super::INFLATE_STREAM`].

use super::{group, mib, reference_box, workers, DEFLATE_STREAM, INFLATE_STREAM};
use crate::config::keys::human_size;
use crate::config::{DeflateSection, ServerConfig};

/// What permessage-deflate's zlib state costs under a `[deflate]` table.
/// Computed whether or not `deflate.enabled` is on (to say what turning it
/// on costs); it counts in [`Memory`] only when it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deflate {
    pub enabled: bool,
    /// Each worker's: its shared deflate stream (made on first use) and the
    /// inflate stream of the one compressed message it may be reading (a
    /// message is inflated and its stream freed within one read).
    pub per_worker_bytes: u64,
    /// The most zlib state one connection keeps between messages.
    pub kept_per_connection_bytes: u64,
    /// Connections of one worker that may keep it
    /// (`deflate.max_context_connections`); `None`: no limit.
    pub context_cap_per_worker: Option<u64>,
}

impl Deflate {
    /// The table's costs with `workers` workers.
    pub fn of(table: &DeflateSection) -> Self {
        Self {
            enabled: table.enabled,
            per_worker_bytes: DEFLATE_STREAM.value as u64 + INFLATE_STREAM.value as u64,
            kept_per_connection_bytes: table.kept_bytes_per_connection(),
            context_cap_per_worker: (table.max_context_connections > 0)
                .then_some(table.max_context_connections as u64),
        }
    }

    /// Bytes at `connections` over `workers` workers, every connection
    /// that may keep state keeping it, whether or not deflate is on.
    pub fn bytes_at(&self, workers: u64, connections: u64) -> u64 {
        let keeping = match self.context_cap_per_worker {
            Some(cap) => connections.min(workers.saturating_mul(cap)),
            None => connections,
        };
        workers * self.per_worker_bytes + keeping.saturating_mul(self.kept_per_connection_bytes)
    }

    /// The fixed part (what does not grow with each connection) when the
    /// cap bounds the kept state: the workers' streams and every capped
    /// place full.
    pub(super) fn fixed_bytes(&self, workers: u64) -> u64 {
        let capped = self.context_cap_per_worker.map_or(0, |cap| {
            workers
                .saturating_mul(cap)
                .saturating_mul(self.kept_per_connection_bytes)
        });
        workers * self.per_worker_bytes + capped
    }
}

/// The memory lines of permessage-deflate: what it holds when on, or what
/// turning it on would hold.
pub(super) fn deflate_lines(
    config: &ServerConfig,
    deflate: &Deflate,
    workers: u64,
    connections: u64,
) -> Vec<String> {
    let table = &config.deflate;
    let kib = |b: u64| format!("{} KiB", group(b.div_ceil(1024)));
    let mut lines = vec![format!(
        "             deflate {}{workers} × ({} shared deflate stream + {} inflate stream reading \
         a message) = {}",
        if deflate.enabled {
            ""
        } else {
            "(off; when on) "
        },
        kib(DEFLATE_STREAM.value as u64),
        kib(INFLATE_STREAM.value as u64),
        mib(workers * deflate.per_worker_bytes)
    )];
    let own = if table.allows_own_deflater() {
        format!("{} own deflate stream", kib(DEFLATE_STREAM.value as u64))
    } else if table.server_no_context_takeover {
        "no own deflate stream (server_no_context_takeover)".to_string()
    } else if table.server_max_window_bits < 15 {
        "no own deflate stream (window under 15 bits)".to_string()
    } else {
        format!(
            "no own deflate stream (over the {} budget)",
            human_size(table.max_memory_per_connection)
        )
    };
    let inflater = if table.client_no_context_takeover {
        "no kept inflate stream (client_no_context_takeover)".to_string()
    } else {
        format!("{} kept inflate stream", kib(INFLATE_STREAM.value as u64))
    };
    let kept = deflate.kept_per_connection_bytes;
    let keeping = match deflate.context_cap_per_worker {
        Some(cap) => format!(
            "at most {workers} × {} (deflate.max_context_connections) = {} connections",
            group(cap),
            group(connections.min(workers.saturating_mul(cap)))
        ),
        None => format!("{} connections (no cap)", group(connections)),
    };
    lines.push(format!(
        "                     kept per connection: {own} + {inflater} = {}{}",
        kib(kept),
        if kept > 0 {
            format!(
                "; {keeping} = {}",
                mib(deflate.bytes_at(workers, connections) - workers * deflate.per_worker_bytes)
            )
        } else {
            String::new()
        }
    ));
    lines
}

/// The README's table of permessage-deflate's zlib state per tier: what
/// turning it on costs, and what context takeover may cost within the
/// tier's budget and cap.
pub(super) fn deflate_table(tiers: &[(&str, &ServerConfig)]) -> String {
    let kib = |b: u64| format!("{} KiB", group(b.div_ceil(1024)));
    let mut out = format!(
        "\npermessage-deflate's zlib state (zlib-rs: a deflate stream {} B, an inflate stream {} \
         B), with `deflate.enabled = true`:\n\n\
         | profile | shared, per worker × workers | kept per connection with context takeover \
         both ways, within `deflate.max_memory_per_connection` | at most, \
         `deflate.max_context_connections` per worker |\n\
         | --- | --- | --- | --- |\n",
        group(DEFLATE_STREAM.value as u64),
        group(INFLATE_STREAM.value as u64),
    );
    for (name, config) in tiers {
        let Some(machine) = reference_box(name) else {
            continue;
        };
        let workers = workers(config, &machine);
        let mut table = config.deflate.clone();
        table.server_no_context_takeover = false;
        table.client_no_context_takeover = false;
        let d = Deflate::of(&table);
        let budget = match table.max_memory_per_connection {
            0 => "no budget".to_string(),
            b => format!("budget {}", human_size(b)),
        };
        let own = if table.allows_own_deflater() {
            "own deflate + inflate stream"
        } else {
            "inflate stream only"
        };
        let most = match d.context_cap_per_worker {
            Some(cap) => {
                let n = workers.saturating_mul(cap);
                format!(
                    "{} × {} = {} connections, {}",
                    workers,
                    group(cap),
                    group(n),
                    mib(n.saturating_mul(d.kept_per_connection_bytes))
                )
            }
            None => "every connection".to_string(),
        };
        out.push_str(&format!(
            "| `{name}` | {} × {} = {} | {} ({own}; {budget}) | {most} |\n",
            workers,
            kib(d.per_worker_bytes),
            mib(workers * d.per_worker_bytes),
            kib(d.kept_per_connection_bytes),
        ));
    }
    out.push_str(
        "\nUnder the defaults (`server_no_context_takeover` and `client_no_context_takeover` \
         insisted on) an idle connection holds no zlib state.\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::{config, machine};
    use super::super::*;
    use super::*;
    use crate::proto::deflate::{DEFLATE_STATE_BYTES, INFLATE_STATE_BYTES};

    #[test]
    fn zlib_state_counts_only_when_deflate_is_on() {
        let d = DEFLATE_STATE_BYTES[6];
        let i = INFLATE_STATE_BYTES;
        let m = machine(2, 64, 1 << 20, 1);
        let mut c = config(2);
        c.limits.max_connections_per_worker = 100_000;
        c.capacity.planned_connections = 10_000;
        // Off: nothing, but the text says what turning it on would cost.
        let off = compute(&c, &Load::default(), &m);
        assert_eq!(off.memory.deflate, 0);
        assert_eq!(off.per_connection.deflate_kept_bytes, 0);
        let text = off.lines.join("\n");
        assert!(
            text.contains("deflate (off; when on) 2 × (372 KiB"),
            "{text}"
        );
        // On with the defaults: each worker's shared streams, nothing kept.
        c.deflate.enabled = true;
        let on = compute(&c, &Load::default(), &m);
        assert_eq!(on.memory.deflate, 2 * (d + i));
        assert_eq!(on.memory.total(), off.memory.total() + 2 * (d + i));
        assert_eq!(on.deflate.kept_per_connection_bytes, 0);
        // Context takeover both ways, capped: the capped places.
        c.deflate.server_no_context_takeover = false;
        c.deflate.client_no_context_takeover = false;
        c.deflate.max_context_connections = 1_000;
        let capped = compute(&c, &Load::default(), &m);
        assert_eq!(capped.deflate.kept_per_connection_bytes, d + i);
        assert_eq!(capped.memory.deflate, 2 * (d + i) + 2_000 * (d + i));
        assert_eq!(capped.per_connection.deflate_kept_bytes, 0);
        // Fewer connections than places: only those.
        assert_eq!(
            memory_at(&c, &Load::default(), 2, 500).deflate,
            2 * (d + i) + 500 * (d + i)
        );
        // A budget without room for the own stream: the inflater only.
        c.deflate.max_memory_per_connection = d + i - 1;
        let budget = compute(&c, &Load::default(), &m);
        assert_eq!(budget.deflate.kept_per_connection_bytes, i);
        assert_eq!(budget.memory.deflate, 2 * (d + i) + 2_000 * i);
        let text = budget.lines.join("\n");
        assert!(text.contains("no own deflate stream (over the"), "{text}");
        // No cap: every connection keeps it, and memory binds sooner.
        c.deflate.max_memory_per_connection = 0;
        c.deflate.max_context_connections = 0;
        c.capacity.planned_connections = 0;
        c.limits.max_connections_per_worker = 10_000_000;
        let uncapped = compute(&c, &Load::default(), &m);
        assert_eq!(uncapped.per_connection.deflate_kept_bytes, d + i);
        assert_eq!(uncapped.connections_bound_by(), Resource::Memory);
        let mut plain = c.clone();
        plain.deflate.enabled = false;
        let plain = compute(&plain, &Load::default(), &m);
        // (The fds bind the plain one, at about a million.)
        assert!(uncapped.connections * 5 < plain.connections);
        assert!(uncapped.memory.total() <= (64 << 30) / 100 * MEMORY_BUDGET_PERCENT);
        assert_eq!(
            uncapped.memory.deflate,
            2 * (d + i) + uncapped.connections * (d + i)
        );
    }

    #[test]
    fn the_readme_says_what_zlib_state_costs_per_tier() {
        let configs: Vec<(&str, ServerConfig)> = ["medium", "high", "ultra"]
            .into_iter()
            .map(|name| {
                let profile = crate::config::profile::Profile::embedded(name).expect(name);
                let effective =
                    crate::config::layers::load(Some(profile), Vec::new(), &[]).expect(name);
                (name, effective.config)
            })
            .collect();
        let tiers: Vec<(&str, &ServerConfig)> = configs.iter().map(|(n, c)| (*n, c)).collect();
        let table = deflate_table(&tiers);
        // Every tier says what context takeover may cost it, within its cap.
        for (name, config) in &tiers {
            assert!(config.deflate.max_context_connections > 0, "{name}");
            assert!(config.deflate.max_memory_per_connection > 0, "{name}");
            assert!(table.contains(&format!("| `{name}` |")), "{table}");
        }
        // medium's budget holds no own deflate stream; high's does.
        assert!(
            table.contains("| `medium` | 6 × 418 KiB = 3 MiB | 47 KiB (inflate stream only"),
            "{table}"
        );
        assert!(
            table
                .contains("| `high` | 8 × 418 KiB = 4 MiB | 418 KiB (own deflate + inflate stream"),
            "{table}"
        );
    }
}
