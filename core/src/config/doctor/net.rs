//! The network checks of `ringcast doctor`: accept queues, ephemeral ports,
//! TCP buffer memory and socket buffer caps, as pure functions of the
//! configuration and the text of the `/proc/sys/net` files (see `checks.rs`
//! for the severity rules).

use crate::config::keys::human_size;
use crate::config::ServerConfig;

use super::checks::{numbers, ok, unreadable, warn};
use super::Finding;

/// Kernel memory a connection with data in flight holds at least: one page
/// of socket buffer.
const INFLIGHT_PER_CONNECTION: u64 = 4096;

/// `net.core.somaxconn` silently caps every listen backlog.
pub fn somaxconn(config: &ServerConfig, text: Option<&str>) -> Finding {
    const CHECK: &str = "somaxconn";
    let Some(value) = text.and_then(|t| numbers(t).first().copied()) else {
        return unreadable(CHECK, "/proc/sys/net/core/somaxconn");
    };
    let backlog = u64::from(config.server.backlog);
    if value < backlog {
        return warn(
            CHECK,
            format!(
                "net.core.somaxconn {value} cuts server.backlog {backlog} to {value}: a \
                 reconnect storm overflows the accept queue sooner"
            ),
            format!("sysctl -w net.core.somaxconn={backlog} (persist: tuning/sysctl.d/)"),
        );
    }
    ok(
        CHECK,
        format!("net.core.somaxconn {value} >= server.backlog {backlog}"),
    )
}

/// `net.ipv4.tcp_max_syn_backlog`: half-open connections during a storm.
pub fn syn_backlog(config: &ServerConfig, text: Option<&str>) -> Finding {
    const CHECK: &str = "syn backlog";
    let Some(value) = text.and_then(|t| numbers(t).first().copied()) else {
        return unreadable(CHECK, "/proc/sys/net/ipv4/tcp_max_syn_backlog");
    };
    let backlog = u64::from(config.server.backlog);
    if value < backlog {
        return warn(
            CHECK,
            format!(
                "net.ipv4.tcp_max_syn_backlog {value} < server.backlog {backlog}: SYNs of a \
                 reconnect storm are dropped (or answered with cookies) sooner"
            ),
            format!("sysctl -w net.ipv4.tcp_max_syn_backlog={backlog} (persist: tuning/sysctl.d/)"),
        );
    }
    ok(
        CHECK,
        format!("net.ipv4.tcp_max_syn_backlog {value} >= server.backlog {backlog}"),
    )
}

/// `net.ipv4.ip_local_port_range`: the server takes no ephemeral ports, but
/// a load generator (or a broker client) on the same box does.
pub fn port_range(text: Option<&str>) -> Finding {
    const CHECK: &str = "port range";
    let range = text.map(numbers).unwrap_or_default();
    let [lo, hi] = range[..] else {
        return unreadable(CHECK, "/proc/sys/net/ipv4/ip_local_port_range");
    };
    let span = (hi + 1).saturating_sub(lo);
    let detail = format!(
        "{lo}-{hi}: {span} ephemeral ports per source address (the server needs none; a load \
         generator on this box opens at most {span} connections per source address)"
    );
    if span < 10_000 {
        return warn(
            CHECK,
            detail,
            "sysctl -w net.ipv4.ip_local_port_range=\"1024 65535\"".into(),
        );
    }
    ok(CHECK, detail)
}

/// `net.ipv4.tcp_mem` (pages): past "pressure" the kernel shrinks socket
/// buffers, past "max" it refuses to queue more.
pub fn tcp_mem(config: &ServerConfig, text: Option<&str>, page_size: u64) -> Finding {
    const CHECK: &str = "tcp_mem";
    let values = text.map(numbers).unwrap_or_default();
    let [low, pressure, max] = values[..] else {
        return unreadable(CHECK, "/proc/sys/net/ipv4/tcp_mem");
    };
    let shown = format!(
        "low {}, pressure {}, max {}",
        human_size(low * page_size),
        human_size(pressure * page_size),
        human_size(max * page_size)
    );
    let planned = config.capacity.planned_connections;
    if planned == 0 {
        return ok(
            CHECK,
            format!("{shown} (no capacity statement to compare with)"),
        );
    }
    let need = planned * INFLIGHT_PER_CONNECTION;
    let need_pages = need.div_ceil(page_size);
    if pressure * page_size < need {
        return warn(
            CHECK,
            format!(
                "{shown}: {planned} planned connections with one page in flight each need {} \
                 of socket buffers, past the pressure point",
                human_size(need)
            ),
            format!(
                "sysctl -w net.ipv4.tcp_mem=\"{need_pages} {} {}\" (persist: tuning/sysctl.d/)",
                need_pages * 3 / 2,
                need_pages * 2
            ),
        );
    }
    ok(
        CHECK,
        format!(
            "{shown}: room for {planned} planned connections with a page in flight each ({})",
            human_size(need)
        ),
    )
}

/// `SO_RCVBUF`/`SO_SNDBUF` asked for vs the caps `rmem_max`/`wmem_max`;
/// with autotuning, what a socket may grow to.
pub fn socket_buffers(
    config: &ServerConfig,
    rmem_max: Option<&str>,
    wmem_max: Option<&str>,
    tcp_rmem: Option<&str>,
    tcp_wmem: Option<&str>,
) -> Finding {
    const CHECK: &str = "socket buffers";
    let mut problems = Vec::new();
    let mut fixes = Vec::new();
    for (key, asked, cap, sysctl) in [
        (
            "server.so_rcvbuf",
            config.server.so_rcvbuf,
            rmem_max,
            "net.core.rmem_max",
        ),
        (
            "server.so_sndbuf",
            config.server.so_sndbuf,
            wmem_max,
            "net.core.wmem_max",
        ),
    ] {
        let cap = cap.and_then(|t| numbers(t).first().copied());
        if let Some(cap) = cap.filter(|cap| asked as u64 > *cap) {
            problems.push(format!("{key} {asked} is capped at {sysctl} {cap}"));
            fixes.push(format!("sysctl -w {sysctl}={asked}"));
        }
    }
    if !problems.is_empty() {
        return warn(
            CHECK,
            problems.join("; "),
            format!("{} (persist: tuning/sysctl.d/)", fixes.join(" && ")),
        );
    }
    let describe = |asked: usize, auto: Option<&str>, name: &str| match asked {
        0 => {
            let range = auto.map(numbers).unwrap_or_default();
            match range[..] {
                [_, default, max] => format!(
                    "{name} autotuned from {} up to {}",
                    human_size(default),
                    human_size(max)
                ),
                _ => format!("{name} autotuned"),
            }
        }
        n => format!("{name} {} (the kernel doubles it)", human_size(n as u64)),
    };
    ok(
        CHECK,
        format!(
            "{}; {}",
            describe(config.server.so_rcvbuf, tcp_rmem, "receive"),
            describe(config.server.so_sndbuf, tcp_wmem, "send")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::doctor::Status;

    fn planned(connections: u64) -> ServerConfig {
        let mut config = ServerConfig::default();
        config.server.workers = 2;
        config.limits.max_connections_per_worker = 100_000;
        config.capacity.planned_connections = connections;
        config
    }

    #[test]
    fn somaxconn_and_syn_backlog_compare_with_the_backlog() {
        let mut config = ServerConfig::default();
        config.server.backlog = 8192;
        let finding = somaxconn(&config, Some("4096\n"));
        assert_eq!(finding.status, Status::Warn);
        assert_eq!(
            finding.fix.as_deref(),
            Some("sysctl -w net.core.somaxconn=8192 (persist: tuning/sysctl.d/)")
        );
        assert_eq!(somaxconn(&config, Some("65535")).status, Status::Ok);
        assert_eq!(syn_backlog(&config, Some("2048")).status, Status::Warn);
        assert_eq!(syn_backlog(&config, None).status, Status::Warn);
    }

    #[test]
    fn port_range_reports_the_span() {
        let finding = port_range(Some("32768\t60999\n"));
        assert_eq!(finding.status, Status::Ok);
        assert!(
            finding.detail.starts_with("32768-60999: 28232"),
            "{}",
            finding.detail
        );
        assert_eq!(port_range(Some("60000 60999")).status, Status::Warn);
    }

    #[test]
    fn tcp_mem_is_compared_with_a_page_in_flight_per_connection() {
        let tcp = Some("287898\t383866\t575796\n");
        assert_eq!(tcp_mem(&planned(200_000), tcp, 4096).status, Status::Ok);
        let finding = tcp_mem(&planned(1_000_000), tcp, 4096);
        assert_eq!(finding.status, Status::Warn);
        assert_eq!(
            finding.fix.as_deref(),
            Some("sysctl -w net.ipv4.tcp_mem=\"1000000 1500000 2000000\" (persist: tuning/sysctl.d/)")
        );
    }

    #[test]
    fn socket_buffers_over_the_kernel_caps_warn() {
        let mut config = ServerConfig::default();
        config.server.so_sndbuf = 8 << 20;
        let finding = socket_buffers(&config, Some("4194304"), Some("4194304"), None, None);
        assert_eq!(finding.status, Status::Warn);
        assert_eq!(
            finding.fix.as_deref(),
            Some("sysctl -w net.core.wmem_max=8388608 (persist: tuning/sysctl.d/)")
        );
        let finding = socket_buffers(
            &ServerConfig::default(),
            Some("4194304"),
            Some("4194304"),
            Some("4096 131072 33554432"),
            Some("4096 16384 4194304"),
        );
        assert_eq!(finding.status, Status::Ok);
        assert!(finding
            .detail
            .contains("send autotuned from 16 KiB up to 4 MiB"));
    }
}
