//! The capacity model: what a configuration holds on a given box, computed
//! from measured costs, with its arithmetic.
//!
//! [`compute`] is a pure function of the effective [`ServerConfig`], the
//! expected [`Load`] (message size, subscriptions per connection) and the
//! [`Machine`] (cores, memory, fd limit, NIC). It returns a [`Statement`]:
//! connections, deliveries/s, memory, which resource binds first, and the
//! arithmetic as lines of text. `ringcast profile capacity` prints it,
//! `profile show` and `doctor` print its summary, and the README's capacity
//! table is rendered from it ([`readme_table`]), so none of them can drift
//! from the costs below.
//!
//! Every cost is a [`Cost`]: a value with the command, date and box it was
//! measured with. What is a planning choice rather than a measurement (the
//! 70 % CPU and NIC headroom, the 80 % memory budget, 1 % slow consumers) is
//! a named constant saying so.

mod deflate;

pub use self::deflate::Deflate;
use self::deflate::{deflate_lines, deflate_table};
use super::keys::human_size;
use super::ServerConfig;
use crate::proto::deflate::{DEFLATE_STATE_BYTES, INFLATE_STATE_BYTES};

/// One measured cost and where it came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cost {
    pub value: f64,
    pub unit: &'static str,
    /// The command, date and box of the measurement.
    pub source: &'static str,
}

/// The date of the newest measurement the model uses; the README's table
/// names it.
pub const COSTS_DATE: &str = "2026-12-04";

/// The box every cost was measured on.
pub const COSTS_BOX: &str = "the CI box: 2 vCPUs of an AMD EPYC VM, 23.5 GiB, kernel 6.18, \
                             release build, server pinned to CPU 0, load on CPU 1";

/// Server RSS per idle `/ws` connection with no subscription.
pub const IDLE_USER: Cost = Cost {
    value: 886.0,
    unit: "B",
    source: "882, 887, 898 and 885 B in four runs, 2026-12-04, with transparent huge pages off \
             (server.transparent_huge_pages = false, the default): bash \
             hardware-profiles/measure/verify.sh --short (ringcast serve --profile medium --set \
             server.workers=1 on CPU 0, a fresh server; taskset -c 1 ringcast-load connect --url \
             ws://127.0.0.1:PORT/ws --connections 18976 --rate 5000 --hold 3s --settle 2s \
             --server-pid PID: RSS growth ÷ connections), CI box. With huge pages the same code \
             measured 1,105-1,115 or 1,218-1,329 B, run to run: the heap became resident 2 MiB \
             at a time (core/src/os/thp.rs)",
};

/// Kernel slab per TCP socket (an idle one: buffers empty).
pub const IDLE_KERNEL: Cost = Cost {
    value: 5290.0,
    unit: "B",
    source: "5,198, 5,326 and 5,338 B: bash hardware-profiles/measure/verify.sh (slab objects of \
             the caches that grew with the TCP sockets, from /proc/slabinfo, over the 37,952 \
             sockets of 18,976 loopback connections), 2026-12-03, CI box; 4,426 B by Slab in \
             /proc/meminfo on 2026-11-25",
};

/// Server RSS per subscription of a connection to an existing channel.
/// The first subscription of a connection may cost more (its subscription
/// set); runs with one subscription per connection (4,000 and 10,000
/// connections) grew RSS too little to separate from the allocator's
/// purging (+95 B, then RSS fell), so that is not in the model.
pub const PER_SUBSCRIPTION: Cost = Cost {
    value: 182.0,
    unit: "B",
    source: "181, 183, 182 and 184 B, four fresh servers with transparent huge pages off: \
             bash hardware-profiles/measure/verify.sh --short, which runs cd \
             hardware-profiles/measure && python3 subscription_mem.py --port PORT --pid PID \
             --conns 400 --subs 128 (51,200 subscriptions to 128 channels) against ringcast \
             serve --profile medium --set server.workers=1 on CPU 0, the script on CPU 1, \
             2026-12-04, CI box; with presence's entry per subscription (154, 157 and 165 B \
             earlier that day with huge pages; 38 and 39 B on 2026-12-03, before presence)",
};

/// Server RSS per history entry beyond the allocation holding its push
/// frame ([`allocation_bytes`]): 289 B measured for a 64-byte `data` (a
/// 143-byte frame in a 160-byte block), minus the block.
pub const HISTORY_ENTRY_OVERHEAD: Cost = Cost {
    value: 129.0,
    unit: "B",
    source: "289 B per entry of 64-byte data (288, 289, 289 and 305 B at 80,000 entries, four \
             fresh servers) minus the 160-byte block of its 143-byte push frame: bash \
             hardware-profiles/measure/verify.sh, which runs cd hardware-profiles/measure && \
             python3 history_mem.py --port PORT --pid PID --conns 400 --history-size 100 \
             against ringcast serve --profile medium --set server.workers=1 on CPU 0, the script \
             on CPU 1, 2026-12-04, CI box. Larger data, same command with --conns 200 --per-conn \
             100 --data N (20,000 entries): 1,355 B at 1,024 (model 1,409), 5,561 and 5,568 B at \
             4,096 (model 5,249), 21,084 B at 16,384 (model 20,609), 2026-12-04 (255 B at 64 on \
             2026-12-03 with 2 workers and the embedded defaults; 356-360 B on 2026-11-25)",
};

/// Bytes a push frame adds to its `data`: 143-byte frames for 64-byte data.
pub const PUSH_FRAME_OVERHEAD: Cost = Cost {
    value: 79.0,
    unit: "B",
    source: "143-byte push frames for 64-byte data on channel \"bench\" (fanout_cpu.py's \
             approx_push_frame_bytes), 2026-11-25",
};

/// Fixed RSS of a started server.
pub const FIXED_BASE: Cost = Cost {
    value: 10.8 * 1024.0 * 1024.0,
    unit: "B",
    source: "RSS at start with 1, 2, 4, 8 workers: 17.5, 24.4, 37.9, 64.9 MiB (two fresh \
             servers each, within 0.1 MiB; ringcast serve --listen 127.0.0.1:0 --workers N \
             --no-pin, release build, transparent huge pages off; grep VmRSS /proc/PID/status \
             0.5 s after the listening line), least squares: 10.8 MiB + 6.76 MiB per worker, \
             2026-12-04, CI box (11.7 + 10.15 MiB per worker earlier that day with huge pages; \
             10 + 8.3 MiB per worker on 2026-11-25, with the code of that day)",
};

/// Fixed RSS per worker (mostly its inbox).
pub const FIXED_PER_WORKER: Cost = Cost {
    value: 6.76 * 1024.0 * 1024.0,
    unit: "B",
    source: "same runs as the fixed base: the slope of RSS over workers, 2026-12-04",
};

/// Server CPU per write (`sendmsg`) to a subscriber's socket, whatever it
/// carries. On loopback it includes the receiving end's TCP processing,
/// which the kernel runs in the sender's system call. A worker's CPU is
/// [`CPU_IDLE`] + deliveries/s × [`CPU_PER_FRAME`] + writes/s × this, so the
/// CPU per delivery falls as subscribers get more pushes per write.
pub const CPU_PER_WRITE: Cost = Cost {
    value: 1.892,
    unit: "µs",
    source: "least-squares fit of the server's cores = idle + per frame × deliveries/s + per \
             write × writes/s over 51 windows of 4 s at 1.0-14.6 pushes per write and \
             25,000-900,000 deliveries/s (residuals -12 % to +20 % from 50,000 deliveries/s up, \
             -14 % to -41 % at 25,000, where the idle term is most of it): bash \
             hardware-profiles/measure/cpu_fit.sh 25 100 200 300 400, then 50 150 250 500 700 \
             900, then 25 100 300 500 700 900 (ringcast serve --profile medium --set \
             server.workers=1 on CPU 0, ringcast-load fanout --subscribers 1000 --size 64 on CPU \
             1, a fresh server per rate; deliveries from ringcast_deliveries_total, CPU from \
             utime + stime in /proc/PID/stat, writes from ringcast_flush_calls_total), \
             2026-12-04, CI box shared with other sessions (the sweeps alone: 2.40, 1.73 and \
             2.16 µs; 8.1 µs on 2026-12-03 from a fit without the idle term over 4.6-34 pushes \
             per write, 27 % over at 1.95)",
};

/// Server CPU per push frame queued to a subscriber, beside its share of a
/// write.
pub const CPU_PER_FRAME: Cost = Cost {
    value: 0.101,
    unit: "µs",
    source: "the same fit as the per-write cost (the sweeps alone: 0.078, 0.100 and 0.053 µs), \
             2026-12-04, CI box",
};

/// A worker's CPU when it is not delivering: its loop's timers, `/metrics`
/// and the connections it holds, with 1,000 subscribers and up to 12
/// publishers connected. Taken off the headroom before deliveries are
/// planned.
pub const CPU_IDLE: Cost = Cost {
    value: 0.098,
    unit: "cores per worker",
    source: "the same fit as the per-write cost, its intercept (the sweeps alone: 0.044, 0.129 \
             and 0.103), 2026-12-04, CI box",
};

/// Planning choice: busy subscribers get this many pushes per write, the
/// batching `fanout_cpu.py` measured (3.2-4.0 frames per `sendmsg`,
/// 2026-11-25). More batching costs less per delivery (`--pushes-per-write`);
/// `cpu_fit.sh` saw 1.0-2.0 at 50,000-700,000 deliveries/s on a quiet box,
/// 3-15 when the box was busy or the rate higher.
pub const BUSY_PUSHES_PER_WRITE: f64 = 3.6;

/// Server CPU per delivery to busy subscribers: a frame and its share of a
/// write at [`BUSY_PUSHES_PER_WRITE`]. `fanout_cpu.py`, whose Python
/// subscribers read more slowly than `ringcast-load`, measured more (2.96 µs
/// on 2026-11-25, 3.09 µs on 2026-12-03, at 3.2-4.0 pushes per write): a
/// reader that keeps its socket fuller makes each write cost more.
pub const CPU_BUSY: Cost = Cost {
    value: CPU_PER_FRAME.value + CPU_PER_WRITE.value / BUSY_PUSHES_PER_WRITE,
    unit: "µs",
    source: "per frame + per write ÷ 3.6 pushes per write = 0.627 µs; measured directly with \
             python3 hardware-profiles/measure/fanout_cpu.py --port PORT --pid PID --subs 500 \
             --pubs 4 --rate 200 --seconds 10: 2.96 µs (2026-11-25), 3.09 µs (2026-12-03), CI box",
};

/// Server CPU per delivery when every push is a `sendmsg` of its own
/// (quiet subscribers, 5-50 pushes/s each): best case.
pub const CPU_QUIET_LOW: Cost = Cost {
    value: 14.6,
    unit: "µs",
    source: "bash bench/peers/run.sh, fan-out row 1,000 subscribers x 50/s, 2026-11-25, CI box",
};

/// Quiet subscribers: worst case measured.
pub const CPU_QUIET_HIGH: Cost = Cost {
    value: 25.1,
    unit: "µs",
    source: "bash bench/peers/run.sh, fan-out row 10,000 subscribers x 5/s, 2026-11-25, CI box",
};

/// Disk engine, `store.fsync = always`: publishes one worker acknowledged
/// per second (closed loop; one `fdatasync` per 64 publishes).
pub const STORE_ALWAYS: Cost = Cost {
    value: 130_674.0,
    unit: "publishes/s per worker",
    source: "bash bench/disk/measure.sh (publish-ack, 8 connections × 16 in flight, 64-byte \
             data, one worker, fsync = always), 2026-12-04, CI box, virtio disk",
};

/// Disk engine, `store.fsync = batch` (10 ms): publishes one worker
/// acknowledged per second (memory engine in the same run: 481,104).
pub const STORE_BATCH: Cost = Cost {
    value: 351_385.0,
    unit: "publishes/s per worker",
    source: "bash bench/disk/measure.sh, the batch row, 2026-12-04, CI box, virtio disk",
};

/// Disk engine: start-up time per GB of log, cold page cache, until the
/// workers serve (the log read and checked, the channels' history rebuilt).
pub const STORE_RECOVERY: Cost = Cost {
    value: 3.58,
    unit: "s per GB",
    source: "bash bench/disk/measure.sh: 3.83 GB of 4 KiB records read and checked in 2.59 s \
             after drop_caches, serving 13.7 s after the start, 2026-12-04, CI box, virtio disk",
};

/// Heap of one zlib-rs deflate stream with a 15-bit window (the core's
/// shared stream, or a connection's own under context takeover); by window
/// in `proto::deflate::DEFLATE_STATE_BYTES`.
pub const DEFLATE_STREAM: Cost = Cost {
    value: DEFLATE_STATE_BYTES[6] as f64,
    unit: "B",
    source: "bytes allocated (a counting global allocator) by flate2 1.1.11 on zlib-rs 0.6.8, \
             raw deflate, memLevel 8, at levels 1, 2, 6 and 9 alike, all of it when the stream \
             is made: cargo test -p ringcast --test zlib_state -- --nocapture, 2026-12-04, CI \
             box; 251,008 B at 9 bits to 380,032 at 15; zlib's formula says 262,144 at 15; 10,000 \
             level-2 streams took 3.0 GiB of RSS (about 310 KiB each) in the fanout/deflate bench",
};

/// Heap of one zlib-rs inflate stream, at any window (zlib-rs allocates a
/// 15-bit window whatever the stream's bits).
pub const INFLATE_STREAM: Cost = Cost {
    value: INFLATE_STATE_BYTES as f64,
    unit: "B",
    source: "the same measurement as the deflate stream: 47,552 B at every window from 9 to 15 \
             bits; zlib's formula says 39,936 at 15, 2026-12-04, CI box",
};

/// Every cost, for `--json` and the README.
pub const COSTS: [(&str, Cost); 18] = [
    ("idle_user_bytes", IDLE_USER),
    ("idle_kernel_bytes", IDLE_KERNEL),
    ("subscription_bytes", PER_SUBSCRIPTION),
    ("history_entry_overhead_bytes", HISTORY_ENTRY_OVERHEAD),
    ("push_frame_overhead_bytes", PUSH_FRAME_OVERHEAD),
    ("fixed_base_bytes", FIXED_BASE),
    ("fixed_per_worker_bytes", FIXED_PER_WORKER),
    ("cpu_us_per_write", CPU_PER_WRITE),
    ("cpu_us_per_frame", CPU_PER_FRAME),
    ("cpu_idle_cores_per_worker", CPU_IDLE),
    ("cpu_busy_us_per_delivery", CPU_BUSY),
    ("cpu_quiet_low_us_per_delivery", CPU_QUIET_LOW),
    ("cpu_quiet_high_us_per_delivery", CPU_QUIET_HIGH),
    ("store_always_publishes_per_s_per_worker", STORE_ALWAYS),
    ("store_batch_publishes_per_s_per_worker", STORE_BATCH),
    ("store_recovery_s_per_gb", STORE_RECOVERY),
    ("deflate_stream_bytes", DEFLATE_STREAM),
    ("inflate_stream_bytes", INFLATE_STREAM),
];

/// Planning choice: a core is planned at 70 % busy, a NIC at 70 % of its
/// line rate (room for bursts, TCP/IP headers, the OS).
pub const HEADROOM_PERCENT: u64 = 70;
/// Planning choice: connections may use 80 % of the box's memory; the rest
/// is the OS's and the page cache's.
pub const MEMORY_BUDGET_PERCENT: u64 = 80;
/// Planning choice: 1 % of connections are slow consumers holding a full
/// outbound queue and full kernel send buffers at once.
pub const SLOW_CONSUMER_PERCENT: u64 = 1;
/// File descriptors kept for everything that is not a connection.
pub const FD_SPARE: u64 = 1024;
/// Kernel send buffer assumed when `server.so_sndbuf` is 0 (the kernel's
/// `tcp_wmem` default, 16 KiB, which the kernel doubles).
pub const DEFAULT_SNDBUF: u64 = 16 * 1024;

/// What the clients do.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Load {
    /// Bytes of a published message's `data`.
    pub message_size: u64,
    /// Channels each connection subscribes to.
    pub subscriptions_per_connection: u64,
    /// Pushes a busy subscriber gets per write (at least 1).
    pub pushes_per_write: f64,
}

impl Default for Load {
    /// 64-byte messages (the size every cost was measured with), one
    /// subscription per connection, [`BUSY_PUSHES_PER_WRITE`].
    fn default() -> Self {
        Self {
            message_size: 64,
            subscriptions_per_connection: 1,
            pushes_per_write: BUSY_PUSHES_PER_WRITE,
        }
    }
}

/// The box the statement is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// Where these facts come from (`the high tier's box`, `this machine`).
    pub label: String,
    pub cores: u64,
    /// Memory, in bytes.
    pub memory: u64,
    /// The hard open-file limit the server will run with.
    pub fd_limit: u64,
    /// NIC line rate, bits per second.
    pub nic_bits_per_sec: u64,
}

/// The box each built-in tier is sized for (its TOML's header names the
/// hardware; these are its figures: the smaller memory of a range).
pub fn reference_box(profile: &str) -> Option<Machine> {
    const GIB: u64 = 1 << 30;
    let (cores, memory, fd_limit, gbit) = match profile {
        "medium" => (6, 8 * GIB, 262_144, 1),
        "high" => (8, 32 * GIB, 1_048_576, 10),
        "ultra" => (64, 128 * GIB, 8_388_608, 25),
        _ => return None,
    };
    Some(Machine {
        label: format!("the {profile} tier's box"),
        cores,
        memory,
        fd_limit,
        nic_bits_per_sec: gbit * 1_000_000_000,
    })
}

/// A resource that limits connections or deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Resource {
    /// The configured caps (`limits.max_connections*`), not a machine limit.
    Caps,
    Fds,
    Memory,
    Cpu,
    Nic,
}

impl Resource {
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Caps => "caps",
            Resource::Fds => "fds",
            Resource::Memory => "memory",
            Resource::Cpu => "CPU",
            Resource::Nic => "NIC",
        }
    }
}

impl std::fmt::Display for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Memory of one connection, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerConnection {
    /// Server RSS of an idle connection.
    pub idle_user_bytes: u64,
    /// Kernel socket memory of an idle connection.
    pub idle_kernel_bytes: u64,
    /// Its subscriptions.
    pub subscription_bytes: u64,
    /// Its share of the slow consumers' queues and send buffers.
    pub slow_share_bytes: u64,
    /// The zlib state it keeps between messages, when every connection may
    /// (permessage-deflate on with context takeover, no
    /// `deflate.max_context_connections`); 0 otherwise (see [`Deflate`]).
    pub deflate_kept_bytes: u64,
}

impl PerConnection {
    pub fn total(&self) -> u64 {
        self.idle_user_bytes
            + self.idle_kernel_bytes
            + self.subscription_bytes
            + self.slow_share_bytes
            + self.deflate_kept_bytes
    }
}

/// Memory of the whole server at some number of connections, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    pub fixed: u64,
    /// Idle connections, user and kernel.
    pub idle: u64,
    pub subscriptions: u64,
    /// Slow consumers: a full outbound queue and full send buffers each.
    pub slow: u64,
    /// Every channel's history full.
    pub history: u64,
    /// permessage-deflate's zlib state (0 when `deflate.enabled` is off).
    pub deflate: u64,
}

impl Memory {
    pub fn total(&self) -> u64 {
        self.fixed + self.idle + self.subscriptions + self.slow + self.history + self.deflate
    }
}

/// What a configuration holds on a box.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub load: Load,
    pub machine: Machine,
    pub workers: u64,
    /// Connections the statement is for: the plan when one is set and it
    /// fits, else the smallest bound.
    pub connections: u64,
    /// Connections each resource allows, smallest first.
    pub connection_bounds: Vec<(Resource, u64)>,
    /// `capacity.planned_connections`, when set.
    pub planned_connections: Option<u64>,
    /// Deliveries/s to busy subscribers: the smaller of CPU and NIC.
    pub deliveries_per_sec: u64,
    pub deliveries_bound_by: Resource,
    pub cpu_deliveries_per_sec: u64,
    pub nic_deliveries_per_sec: u64,
    /// Deliveries/s when every push is a write of its own (worst, best).
    pub quiet_deliveries_per_sec: (u64, u64),
    /// Server CPU per delivery to busy subscribers, µs.
    pub cpu_us_per_delivery: f64,
    pub push_frame_bytes: u64,
    pub history_entry_bytes: u64,
    pub per_connection: PerConnection,
    pub memory: Memory,
    pub deflate: Deflate,
    /// The arithmetic, one line each.
    pub lines: Vec<String>,
}

impl Statement {
    /// The resource that binds connections first.
    pub fn connections_bound_by(&self) -> Resource {
        self.connection_bounds[0].0
    }

    /// The connections and what binds them (`1,000,000 (the plan; fds
    /// bind first at 1,047,552)`).
    pub fn connections_text(&self) -> String {
        let (bound_by, bound) = self.connection_bounds[0];
        if self.planned_connections == Some(self.connections) && self.connections < bound {
            format!(
                "{} (the plan; {bound_by} bind first at {})",
                group(self.connections),
                group(bound)
            )
        } else {
            format!("{} ({bound_by}-bound)", group(self.connections))
        }
    }

    /// One line: connections, deliveries/s, memory, what binds.
    pub fn summary(&self) -> String {
        format!(
            "connections {}, deliveries/s {} ({}-bound; quiet subscribers {}-{}), memory {}",
            self.connections_text(),
            group(self.deliveries_per_sec),
            self.deliveries_bound_by,
            group(self.quiet_deliveries_per_sec.0),
            group(self.quiet_deliveries_per_sec.1),
            gib(self.memory.total())
        )
    }

    /// The statement as data (`ringcast profile capacity --json`).
    pub fn to_json(&self) -> serde_json::Value {
        let bounds: serde_json::Map<String, serde_json::Value> = self
            .connection_bounds
            .iter()
            .map(|(r, n)| (r.as_str().to_lowercase(), (*n).into()))
            .collect();
        let costs: serde_json::Map<String, serde_json::Value> = COSTS
            .iter()
            .map(|(name, c)| {
                (
                    (*name).to_string(),
                    serde_json::json!({"value": c.value, "unit": c.unit, "source": c.source}),
                )
            })
            .collect();
        serde_json::json!({
            "machine": {
                "label": self.machine.label,
                "cores": self.machine.cores,
                "memory_bytes": self.machine.memory,
                "fd_limit": self.machine.fd_limit,
                "nic_bits_per_sec": self.machine.nic_bits_per_sec,
            },
            "load": {
                "message_size": self.load.message_size,
                "subscriptions_per_connection": self.load.subscriptions_per_connection,
                "pushes_per_write": self.load.pushes_per_write,
            },
            "workers": self.workers,
            "connections": self.connections,
            "planned_connections": self.planned_connections,
            "connection_bounds": bounds,
            "connections_bound_by": self.connections_bound_by().as_str().to_lowercase(),
            "deliveries_per_sec": self.deliveries_per_sec,
            "deliveries_bound_by": self.deliveries_bound_by.as_str().to_lowercase(),
            "cpu_deliveries_per_sec": self.cpu_deliveries_per_sec,
            "nic_deliveries_per_sec": self.nic_deliveries_per_sec,
            "quiet_deliveries_per_sec": [self.quiet_deliveries_per_sec.0, self.quiet_deliveries_per_sec.1],
            "cpu_us_per_delivery": self.cpu_us_per_delivery,
            "push_frame_bytes": self.push_frame_bytes,
            "history_entry_bytes": self.history_entry_bytes,
            "per_connection": {
                "idle_user_bytes": self.per_connection.idle_user_bytes,
                "idle_kernel_bytes": self.per_connection.idle_kernel_bytes,
                "subscription_bytes": self.per_connection.subscription_bytes,
                "slow_share_bytes": self.per_connection.slow_share_bytes,
                "deflate_kept_bytes": self.per_connection.deflate_kept_bytes,
                "total_bytes": self.per_connection.total(),
            },
            "deflate": {
                "enabled": self.deflate.enabled,
                "per_worker_bytes": self.deflate.per_worker_bytes,
                "kept_per_connection_bytes": self.deflate.kept_per_connection_bytes,
                "context_connections_per_worker": self.deflate.context_cap_per_worker,
            },
            "memory": {
                "fixed_bytes": self.memory.fixed,
                "idle_bytes": self.memory.idle,
                "subscription_bytes": self.memory.subscriptions,
                "slow_consumer_bytes": self.memory.slow,
                "history_bytes": self.memory.history,
                "deflate_bytes": self.memory.deflate,
                "total_bytes": self.memory.total(),
            },
            "costs_date": COSTS_DATE,
            "costs": costs,
            "arithmetic": self.lines,
        })
    }
}

/// Bytes of the push frame that carries `message_size` bytes of data. The
/// measured 79 bytes of wrapper include a header of up to 4 bytes; a payload
/// past 65,535 bytes needs a 10-byte header, 6 more.
pub fn push_frame_bytes(message_size: u64) -> u64 {
    let frame = message_size + PUSH_FRAME_OVERHEAD.value as u64;
    if frame - 4 > 65_535 {
        frame + 6
    } else {
        frame
    }
}

/// The block the allocator (mimalloc) hands out for `bytes`: multiples of 8
/// up to 64 bytes, then four size classes per power of two (a 143-byte frame
/// takes 160, a 4,172-byte one 5,120) up to 128 KiB, whole 4 KiB pages
/// beyond. A planning model of its size classes: history entries of 1-16 KiB
/// data measured 8-29 % over the overhead plus their frames' bytes, and
/// within 6 % of the overhead plus this.
pub fn allocation_bytes(bytes: u64) -> u64 {
    let step = if bytes <= 64 {
        8
    } else if bytes <= 128 * 1024 {
        // The power of two below `bytes`, in quarters.
        (1u64 << (63 - (bytes - 1).leading_zeros())) / 4
    } else {
        4096
    };
    bytes.div_ceil(step) * step
}

/// Bytes one history entry holds for a message of `message_size`: its
/// push frame's block and the entry's own overhead.
pub fn history_entry_bytes(message_size: u64) -> u64 {
    HISTORY_ENTRY_OVERHEAD.value as u64 + allocation_bytes(push_frame_bytes(message_size))
}

/// The kernel send buffer one socket may fill (`so_sndbuf`, doubled by
/// the kernel).
fn send_buffer(config: &ServerConfig) -> u64 {
    let set = config.server.so_sndbuf as u64;
    2 * if set == 0 { DEFAULT_SNDBUF } else { set }
}

/// Memory of one connection under `load`.
pub fn per_connection(config: &ServerConfig, load: &Load) -> PerConnection {
    let slow_one = config.limits.max_outbound_bytes as u64 + send_buffer(config);
    PerConnection {
        idle_user_bytes: IDLE_USER.value as u64,
        idle_kernel_bytes: IDLE_KERNEL.value as u64,
        subscription_bytes: load.subscriptions_per_connection * PER_SUBSCRIPTION.value as u64,
        slow_share_bytes: slow_one * SLOW_CONSUMER_PERCENT / 100,
        deflate_kept_bytes: match Deflate::of(&config.deflate) {
            d if d.enabled && d.context_cap_per_worker.is_none() => d.kept_per_connection_bytes,
            _ => 0,
        },
    }
}

/// Fixed memory of `workers` workers.
pub fn fixed_memory(workers: u64) -> u64 {
    (FIXED_BASE.value + workers as f64 * FIXED_PER_WORKER.value) as u64
}

/// History memory with every channel's history full.
pub fn history_memory(config: &ServerConfig, load: &Load) -> u64 {
    (config.pubsub.max_channels as u64)
        .saturating_mul(config.pubsub.history_size as u64)
        .saturating_mul(history_entry_bytes(load.message_size))
}

/// Memory of the server at `connections`.
pub fn memory_at(config: &ServerConfig, load: &Load, workers: u64, connections: u64) -> Memory {
    let one = per_connection(config, load);
    let slow_one = config.limits.max_outbound_bytes as u64 + send_buffer(config);
    Memory {
        fixed: fixed_memory(workers),
        idle: connections * (one.idle_user_bytes + one.idle_kernel_bytes),
        subscriptions: connections * one.subscription_bytes,
        slow: connections * SLOW_CONSUMER_PERCENT / 100 * slow_one,
        history: history_memory(config, load),
        deflate: if config.deflate.enabled {
            Deflate::of(&config.deflate).bytes_at(workers, connections)
        } else {
            0
        },
    }
}

/// Workers the server runs on `machine`: the configured count, or one per
/// core when it is 0.
fn workers(config: &ServerConfig, machine: &Machine) -> u64 {
    match config.server.workers {
        0 => machine.cores.max(1),
        n => n as u64,
    }
}

/// Server CPU per delivery, in µs, when each write carries
/// `pushes_per_write` pushes (at least 1).
pub fn cpu_us_per_delivery(pushes_per_write: f64) -> f64 {
    CPU_PER_FRAME.value + CPU_PER_WRITE.value / pushes_per_write.max(1.0)
}

/// Deliveries/s the CPU of `workers` workers allows to busy subscribers
/// under `load`, planned at the headroom (the NIC not counted): what
/// [`compute`] states as `cpu_deliveries_per_sec`, and what `doctor`
/// compares `capacity.planned_messages_per_sec` with.
pub fn cpu_deliveries_per_sec(workers: u64, load: &Load) -> u64 {
    let cores = workers as f64 * (HEADROOM_PERCENT as f64 / 100.0 - CPU_IDLE.value);
    (cores.max(0.0) * 1e6 / cpu_us_per_delivery(load.pushes_per_write)) as u64
}

/// Deliveries/s of `workers` cores at `us` µs each, planned at the headroom.
fn cpu_rate(workers: u64, us: f64) -> u64 {
    (workers as f64 * 1e6 / us * HEADROOM_PERCENT as f64 / 100.0) as u64
}

/// The statement for `config` under `load` on `machine`.
pub fn compute(config: &ServerConfig, load: &Load, machine: &Machine) -> Statement {
    let workers = workers(config, machine);
    let mut lines = Vec::new();
    let one = per_connection(config, load);
    let fixed = fixed_memory(workers);
    let history = history_memory(config, load);
    let frame = push_frame_bytes(load.message_size);
    let entry = history_entry_bytes(load.message_size);
    let deflate = Deflate::of(&config.deflate);
    let deflate_fixed = if deflate.enabled {
        deflate.fixed_bytes(workers)
    } else {
        0
    };

    // Connections: the smallest of what the caps, the fds and the memory allow.
    let mut caps = workers.saturating_mul(config.limits.max_connections_per_worker as u64);
    if config.limits.max_connections > 0 {
        caps = caps.min(config.limits.max_connections as u64);
    }
    let fds = machine.fd_limit.saturating_sub(FD_SPARE);
    let budget = machine.memory / 100 * MEMORY_BUDGET_PERCENT;
    let for_connections = budget.saturating_sub(fixed + history + deflate_fixed);
    let by_memory = for_connections / one.total().max(1);
    let mut bounds = vec![
        (Resource::Caps, caps),
        (Resource::Fds, fds),
        (Resource::Memory, by_memory),
    ];
    bounds.sort_by_key(|(r, n)| (*n, *r));
    let bound = bounds[0].1;
    let planned =
        (config.capacity.planned_connections > 0).then_some(config.capacity.planned_connections);
    let connections = planned.map_or(bound, |p| p.min(bound));

    lines.push(format!(
        "box          {}: {} cores, {} memory, fd limit {}, {} Gbit/s NIC",
        machine.label,
        machine.cores,
        gib(machine.memory),
        group(machine.fd_limit),
        machine.nic_bits_per_sec as f64 / 1e9
    ));
    lines.push(format!(
        "load         {}-byte messages ({}-byte push frames), {} subscription(s) per connection",
        group(load.message_size),
        group(frame),
        load.subscriptions_per_connection
    ));
    lines.push(format!(
        "per conn     {} user + {} kernel + {} × {} B subscriptions + {} % × ({} queue + {} \
         send buffer) slow share = {} B",
        one.idle_user_bytes,
        one.idle_kernel_bytes,
        load.subscriptions_per_connection,
        PER_SUBSCRIPTION.value as u64,
        SLOW_CONSUMER_PERCENT,
        human_size(config.limits.max_outbound_bytes as u64),
        human_size(send_buffer(config)),
        group(one.total())
    ));
    lines.push(format!(
        "connections  caps:   {workers} workers × {} per worker{} = {}",
        group(config.limits.max_connections_per_worker as u64),
        if config.limits.max_connections > 0 {
            format!(
                ", at most limits.max_connections {}",
                config.limits.max_connections
            )
        } else {
            String::new()
        },
        group(caps)
    ));
    lines.push(format!(
        "             fds:    {} − {FD_SPARE} spare = {}",
        group(machine.fd_limit),
        group(fds)
    ));
    let deflate_term = if deflate_fixed > 0 {
        format!(" − {} deflate", mib(deflate_fixed))
    } else {
        String::new()
    };
    lines.push(format!(
        "             memory: ({} % of {} − {} fixed − {} history{deflate_term}) ÷ {} B = {}",
        MEMORY_BUDGET_PERCENT,
        gib(machine.memory),
        mib(fixed),
        mib(history),
        group(one.total()),
        group(by_memory)
    ));
    if fixed + history > budget {
        lines.push(format!(
            "             history alone ({}) and the fixed memory exceed the budget: lower \
             pubsub.max_channels or pubsub.history_size",
            mib(history)
        ));
    }
    match planned {
        Some(p) if p > bound => lines.push(format!(
            "             plan:   capacity.planned_connections {} > {} the {} allow: stated {}",
            group(p),
            group(bound),
            bounds[0].0,
            group(connections)
        )),
        Some(p) => lines.push(format!(
            "             plan:   capacity.planned_connections {} (within the {} bound {})",
            group(p),
            bounds[0].0,
            group(bound)
        )),
        None => lines.push(format!(
            "             binds first: {} → {}",
            bounds[0].0,
            group(connections)
        )),
    }

    // Deliveries: CPU (busy subscribers) vs the NIC.
    let busy_us = cpu_us_per_delivery(load.pushes_per_write);
    let cpu = cpu_deliveries_per_sec(workers, load);
    let nic = (machine.nic_bits_per_sec as f64 / 8.0 / frame as f64 * HEADROOM_PERCENT as f64
        / 100.0) as u64;
    let (deliveries, by) = if nic < cpu {
        (nic, Resource::Nic)
    } else {
        (cpu, Resource::Cpu)
    };
    let quiet = (
        cpu_rate(workers, CPU_QUIET_HIGH.value).min(nic),
        cpu_rate(workers, CPU_QUIET_LOW.value).min(nic),
    );
    lines.push(format!(
        "deliveries   CPU: {workers} workers × ({HEADROOM_PERCENT} % − {} idle) × 1e6 ÷ ({} + {} ÷ {} \
         pushes per write = {:.3} µs) = {}",
        CPU_IDLE.value,
        CPU_PER_FRAME.value,
        CPU_PER_WRITE.value,
        load.pushes_per_write.max(1.0),
        busy_us,
        group(cpu)
    ));
    lines.push(format!(
        "             NIC: {} Gbit/s ÷ 8 ÷ {} B × {HEADROOM_PERCENT} % = {}",
        machine.nic_bits_per_sec as f64 / 1e9,
        group(frame),
        group(nic)
    ));
    lines.push(format!(
        "             binds first: {by} → {}; quiet subscribers (one write per push, {}-{} µs): \
         {}-{}",
        group(deliveries),
        CPU_QUIET_LOW.value,
        CPU_QUIET_HIGH.value,
        group(quiet.0),
        group(quiet.1)
    ));

    let memory = memory_at(config, load, workers, connections);
    let slow_conns = connections * SLOW_CONSUMER_PERCENT / 100;
    lines.push(format!(
        "memory       fixed   {} + {workers} × {:.1} MiB = {}",
        mib(FIXED_BASE.value as u64),
        FIXED_PER_WORKER.value / (1u64 << 20) as f64,
        mib(memory.fixed)
    ));
    lines.push(format!(
        "             idle    {} × ({} + {}) B = {}",
        group(connections),
        one.idle_user_bytes,
        one.idle_kernel_bytes,
        mib(memory.idle)
    ));
    lines.push(format!(
        "             subs    {} × {} B = {}",
        group(connections),
        group(one.subscription_bytes),
        mib(memory.subscriptions)
    ));
    lines.push(format!(
        "             slow    {} × ({} + {}) = {}",
        group(slow_conns),
        human_size(config.limits.max_outbound_bytes as u64),
        human_size(send_buffer(config)),
        mib(memory.slow)
    ));
    lines.push(format!(
        "             history {} channels × {} × {} B = {}",
        group(config.pubsub.max_channels as u64),
        config.pubsub.history_size,
        entry,
        mib(memory.history)
    ));
    lines.extend(deflate_lines(config, &deflate, workers, connections));
    lines.push(format!(
        "             total   {} = {}",
        mib(memory.total()),
        gib(memory.total())
    ));
    if !config.store.data_path.as_os_str().is_empty() {
        lines.extend(store_lines(config, workers));
    }

    Statement {
        load: *load,
        machine: machine.clone(),
        workers,
        connections,
        connection_bounds: bounds,
        planned_connections: planned,
        deliveries_per_sec: deliveries,
        deliveries_bound_by: by,
        cpu_deliveries_per_sec: cpu,
        nic_deliveries_per_sec: nic,
        quiet_deliveries_per_sec: quiet,
        cpu_us_per_delivery: busy_us,
        push_frame_bytes: frame,
        history_entry_bytes: entry,
        per_connection: one,
        memory,
        deflate,
        lines,
    }
}

/// What the `[store]` table gives with `engine.kind = "disk"`: publishes/s
/// by `store.fsync`, and the longest recovery `store.max_disk` allows.
fn store_lines(config: &ServerConfig, workers: u64) -> Vec<String> {
    use super::FsyncPolicy;
    let store = &config.store;
    let publishes = match store.fsync {
        FsyncPolicy::Always => format!(
            "fsync = always: {} publishes/s measured on one worker (one fdatasync per 63); \
             workers share the disk's syncs, so measure this disk with bench/disk/measure.sh",
            group(STORE_ALWAYS.value as u64)
        ),
        policy => format!(
            "fsync = {policy}: {workers} workers × {} publishes/s × {HEADROOM_PERCENT} % = {}",
            group(STORE_BATCH.value as u64),
            group(cpu_rate(workers, 1e6 / STORE_BATCH.value))
        ),
    };
    let recovery = match store.max_disk {
        0 => "recovery     no store.max_disk: bounded by pubsub.history_ttl × publish rate".into(),
        max => format!(
            "recovery     store.max_disk {} × {} s per GB = {:.0} s at most",
            human_size(max),
            STORE_RECOVERY.value,
            max as f64 / 1e9 * STORE_RECOVERY.value
        ),
    };
    vec![
        format!("store        (engine.kind = \"disk\") {publishes}"),
        recovery,
    ]
}

/// `n` with thousands separators (`1,048,576`).
pub fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn mib(bytes: u64) -> String {
    format!("{} MiB", group(bytes.div_ceil(1 << 20)))
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// The README's capacity table: one row per tier, each computed on its
/// reference box with the default [`Load`]. `tiers` pairs each tier's name
/// with its effective configuration.
pub fn readme_table(tiers: &[(&str, &ServerConfig)]) -> String {
    let mut out =
        "| profile | box | connections | deliveries/s, busy / quiet subscribers | memory |\n\
         | --- | --- | --- | --- | --- |\n"
            .to_string();
    for (name, config) in tiers {
        let Some(machine) = reference_box(name) else {
            continue;
        };
        let s = compute(config, &Load::default(), &machine);
        out.push_str(&format!(
            "| `{name}` | {} cores, {}, fd limit {}, {} GbE | {} | {} ({}-bound) / {}-{} | {} |\n",
            machine.cores,
            gib(machine.memory).replace(".0 GiB", " GiB"),
            group(machine.fd_limit),
            machine.nic_bits_per_sec / 1_000_000_000,
            s.connections_text(),
            group(s.deliveries_per_sec),
            s.deliveries_bound_by,
            group(s.quiet_deliveries_per_sec.0),
            group(s.quiet_deliveries_per_sec.1),
            gib(s.memory.total())
        ));
    }
    out.push_str(&format!(
        "\nComputed by `ringcast profile capacity` from costs measured up to {COSTS_DATE} \
         ({COSTS_BOX}), for 64-byte messages and one subscription per connection.\n"
    ));
    out.push_str(&deflate_table(tiers));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_lines_follow_the_fsync_policy_and_the_disk_budget() {
        let mut c = ServerConfig::default();
        c.server.workers = 2;
        let box_ = machine(2, 8, 1 << 20, 1);
        let store = |s: &Statement| s.lines.iter().any(|l| l.starts_with("store"));
        assert!(
            !store(&compute(&c, &Load::default(), &box_)),
            "no store, no line"
        );
        c.store.data_path = "/var/lib/ringcast".into();
        c.store.max_disk = 2 * 1_000_000_000;
        let s = compute(&c, &Load::default(), &box_);
        let text = s.lines.join("\n");
        let batch = format!(
            "fsync = batch: 2 workers × {}",
            group(STORE_BATCH.value as u64)
        );
        assert!(text.contains(&batch), "{text}");
        let recovery = format!("= {:.0} s at most", 2.0 * STORE_RECOVERY.value);
        assert!(text.contains(&recovery), "{text}");
        c.store.fsync = super::super::FsyncPolicy::Always;
        let text = compute(&c, &Load::default(), &box_).lines.join("\n");
        let always = format!(
            "{} publishes/s measured on one worker",
            group(STORE_ALWAYS.value as u64)
        );
        assert!(text.contains(&always), "{text}");
    }

    pub(super) fn machine(cores: u64, memory_gib: u64, fd_limit: u64, gbit: u64) -> Machine {
        Machine {
            label: "test box".into(),
            cores,
            memory: memory_gib << 30,
            fd_limit,
            nic_bits_per_sec: gbit * 1_000_000_000,
        }
    }

    pub(super) fn config(workers: usize) -> ServerConfig {
        let mut c = ServerConfig::default();
        c.server.workers = workers;
        c
    }

    #[test]
    fn doubling_workers_doubles_cpu_bound_deliveries() {
        let big_nic = machine(16, 64, 1 << 20, 100);
        let one = compute(&config(4), &Load::default(), &big_nic);
        let two = compute(&config(8), &Load::default(), &big_nic);
        assert_eq!(one.deliveries_bound_by, Resource::Cpu);
        assert_eq!(two.deliveries_bound_by, Resource::Cpu);
        // Within rounding of one delivery per worker.
        assert!(two.deliveries_per_sec.abs_diff(2 * one.deliveries_per_sec) <= 2);
        // 4 × (70 % − 0.098 idle) × 1e6 ÷ (0.101 + 1.892 ÷ 3.6 µs).
        assert_eq!(one.cpu_deliveries_per_sec, 3_843_234);
    }

    #[test]
    fn more_pushes_per_write_cost_less_per_delivery() {
        assert!((cpu_us_per_delivery(3.6) - CPU_BUSY.value).abs() < 1e-9);
        // One push per write: the whole write per delivery; no fewer than one.
        assert!((cpu_us_per_delivery(1.0) - 1.993).abs() < 1e-9);
        assert!((cpu_us_per_delivery(0.5) - 1.993).abs() < 1e-9);
        let big_nic = machine(16, 64, 1 << 20, 100);
        let batched = Load {
            pushes_per_write: 10.0,
            ..Load::default()
        };
        let busy = compute(&config(1), &Load::default(), &big_nic);
        let more = compute(&config(1), &batched, &big_nic);
        // (70 % − 0.098 idle) × 1e6 ÷ (0.101 + 0.1892 µs).
        assert_eq!(more.cpu_deliveries_per_sec, 2_074_431);
        assert!(more.cpu_deliveries_per_sec > 2 * busy.cpu_deliveries_per_sec);
        assert!((more.cpu_us_per_delivery - 0.2902).abs() < 1e-9);
    }

    #[test]
    fn a_small_nic_binds_deliveries() {
        let s = compute(&config(8), &Load::default(), &machine(8, 32, 1 << 20, 1));
        assert_eq!(s.deliveries_bound_by, Resource::Nic);
        // 1e9 / 8 / 143 × 70 %.
        assert_eq!(s.nic_deliveries_per_sec, 611_888);
        assert_eq!(s.deliveries_per_sec, 611_888);
    }

    #[test]
    fn a_fd_limit_below_the_memory_bound_makes_fds_bind() {
        let mut c = config(2);
        c.limits.max_connections_per_worker = 1_000_000;
        let s = compute(&c, &Load::default(), &machine(2, 64, 20_000, 1));
        assert_eq!(s.connections_bound_by(), Resource::Fds);
        assert_eq!(s.connections, 20_000 - FD_SPARE);
        // Raise the fd limit past what memory holds: memory binds.
        let s = compute(&c, &Load::default(), &machine(2, 8, 100_000_000, 1));
        assert_eq!(s.connections_bound_by(), Resource::Memory);
        assert!(s.connections > 0);
        assert!(s.memory.total() <= (8 << 30) / 100 * MEMORY_BUDGET_PERCENT);
        // History alone over the budget: no connection fits.
        let s = compute(&c, &Load::default(), &machine(2, 1, 100_000_000, 1));
        assert_eq!(s.connections, 0);
        assert!(
            s.lines.iter().any(|l| l.contains("history alone")),
            "{:?}",
            s.lines
        );
    }

    #[test]
    fn caps_bind_when_they_are_the_smallest() {
        let mut c = config(2);
        c.limits.max_connections_per_worker = 1000;
        let s = compute(&c, &Load::default(), &machine(2, 64, 1 << 20, 1));
        assert_eq!(s.connections_bound_by(), Resource::Caps);
        assert_eq!(s.connections, 2000);
        c.limits.max_connections = 1500;
        assert_eq!(
            compute(&c, &Load::default(), &machine(2, 64, 1 << 20, 1)).connections,
            1500
        );
    }

    #[test]
    fn the_plan_is_stated_when_it_fits_and_capped_when_not() {
        let mut c = config(2);
        c.limits.max_connections_per_worker = 10_000;
        c.capacity.planned_connections = 5_000;
        let m = machine(2, 64, 1 << 20, 1);
        assert_eq!(compute(&c, &Load::default(), &m).connections, 5_000);
        c.capacity.planned_connections = 50_000;
        assert_eq!(compute(&c, &Load::default(), &m).connections, 20_000);
    }

    #[test]
    fn allocations_round_up_to_the_size_classes() {
        assert_eq!(allocation_bytes(1), 8);
        assert_eq!(allocation_bytes(64), 64);
        assert_eq!(allocation_bytes(65), 80);
        assert_eq!(allocation_bytes(143), 160);
        assert_eq!(allocation_bytes(256), 256);
        assert_eq!(allocation_bytes(1100), 1280);
        assert_eq!(allocation_bytes(4172), 5120);
        assert_eq!(allocation_bytes(16_460), 20_480);
        assert_eq!(allocation_bytes(128 * 1024), 128 * 1024);
        assert_eq!(allocation_bytes(128 * 1024 + 1), 128 * 1024 + 4096);
    }

    #[test]
    fn memory_adds_up_and_grows_with_its_inputs() {
        let c = config(2);
        let load = Load::default();
        let m = memory_at(&c, &load, 2, 10_000);
        let one = per_connection(&c, &load);
        assert_eq!(
            m.idle,
            10_000 * (IDLE_USER.value as u64 + IDLE_KERNEL.value as u64)
        );
        assert_eq!(m.subscriptions, 10_000 * one.subscription_bytes);
        assert_eq!(
            m.total(),
            m.fixed + m.idle + m.subscriptions + m.slow + m.history
        );
        // History: 289 B per entry at 64-byte data, as measured: 129 B and
        // the 160-byte block of a 143-byte frame.
        assert_eq!(history_entry_bytes(64), 289);
        // 4,096-byte data: a 4,175-byte frame in a 5,120-byte block.
        assert_eq!(history_entry_bytes(4096), 129 + 5120);
        let big = Load {
            message_size: 64 * 1024,
            ..load
        };
        assert!(history_memory(&c, &big) > 100 * history_memory(&c, &load));
        let subs = Load {
            subscriptions_per_connection: 10,
            ..load
        };
        assert_eq!(
            memory_at(&c, &subs, 2, 10_000).subscriptions,
            10 * m.subscriptions
        );
        // A larger outbound queue costs its slow consumers more.
        let mut q = c.clone();
        q.limits.max_outbound_bytes *= 2;
        assert!(memory_at(&q, &load, 2, 10_000).slow > m.slow);
    }

    #[test]
    fn push_frames_grow_with_their_websocket_header() {
        assert_eq!(push_frame_bytes(64), 143);
        assert_eq!(push_frame_bytes(1000), 1000 + 79);
        assert_eq!(push_frame_bytes(100_000), 100_000 + 79 + 6);
    }

    #[test]
    fn the_tiers_hold_what_their_headers_say() {
        for (name, connections) in [
            ("medium", 200_000),
            ("high", 1_000_000),
            ("ultra", 5_000_000),
        ] {
            let profile = super::super::profile::Profile::embedded(name).expect(name);
            let effective = super::super::layers::load(Some(profile), Vec::new(), &[]).expect(name);
            let s = compute(
                &effective.config,
                &Load::default(),
                &reference_box(name).expect(name),
            );
            assert_eq!(s.connections, connections, "{name}: {}", s.lines.join("\n"));
            // The plan the profile keeps covers the computed memory.
            assert!(
                effective.config.capacity.planned_memory >= s.memory.total(),
                "{name}: planned {} < computed {}",
                effective.config.capacity.planned_memory,
                s.memory.total()
            );
        }
    }

    #[test]
    fn group_separates_thousands() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(1_048_576), "1,048,576");
    }
}
