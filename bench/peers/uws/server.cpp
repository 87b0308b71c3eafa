// Peer server for side-by-side runs: uWebSockets (C++), echo and broadcast.
//
// - GET /echo: every text or binary message is sent back as it came.
// - GET /ws:   every text or binary message is sent to every client connected
//              to /ws, the sender included (what `ringcast-load fanout
//              --protocol broadcast` drives), through uWS's own pub/sub: each
//              /ws client subscribes to one topic and the app publishes to it.
//
// Settings as a production user of uWS would pick for this test: no
// compression, no idle timeout (the other peers have none), 16 MiB messages,
// backpressure kept rather than closed on. One thread, one event loop
// (uSockets over epoll), like every other peer here.
//
//   uws-peer --listen 127.0.0.1:0     prints `listening on ADDR` when ready
//
// Built by bench/peers/uws/build.sh from the uWebSockets and uSockets sources
// vendored in the crates.io crate libuwebsockets-sys.

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "App.h"

namespace {

struct PerSocket {};

constexpr std::string_view TOPIC = "all";

[[noreturn]] void usage() {
    std::fprintf(stderr, "usage: uws-peer [--listen HOST:PORT]   (default 127.0.0.1:0)\n");
    std::exit(2);
}

uWS::App::WebSocketBehavior<PerSocket> behavior() {
    uWS::App::WebSocketBehavior<PerSocket> b;
    b.compression = uWS::DISABLED;
    b.maxPayloadLength = 16 * 1024 * 1024;
    b.idleTimeout = 0;
    b.maxBackpressure = 64 * 1024 * 1024;
    b.closeOnBackpressureLimit = false;
    b.sendPingsAutomatically = false;
    return b;
}

}  // namespace

int main(int argc, char **argv) {
    std::string listen = "127.0.0.1:0";
    for (int i = 1; i < argc; i++) {
        std::string_view arg = argv[i];
        if (arg == "--listen" && i + 1 < argc) {
            listen = argv[++i];
        } else {
            usage();
        }
    }
    auto colon = listen.rfind(':');
    if (colon == std::string::npos) usage();
    std::string host = listen.substr(0, colon);
    int port = std::atoi(listen.c_str() + colon + 1);

    uWS::App app;
    uWS::App *shared = &app;

    auto echo = behavior();
    echo.message = [](auto *ws, std::string_view message, uWS::OpCode op) { ws->send(message, op); };

    auto broadcast = behavior();
    broadcast.open = [](auto *ws) { ws->subscribe(TOPIC); };
    broadcast.message = [shared](auto *, std::string_view message, uWS::OpCode op) {
        shared->publish(TOPIC, message, op);
    };

    app.ws<PerSocket>("/echo", std::move(echo))
        .ws<PerSocket>("/ws", std::move(broadcast))
        .any("/*", [](auto *res, auto *) { res->writeStatus("404 Not Found")->end("not found\n"); })
        .listen(host, port, [&](us_listen_socket_t *socket) {
            if (!socket) {
                std::fprintf(stderr, "uws-peer: cannot listen on %s\n", listen.c_str());
                std::exit(1);
            }
            int bound = us_socket_local_port(0, reinterpret_cast<us_socket_t *>(socket));
            std::printf("listening on %s:%d\n", host.c_str(), bound);
            std::fflush(stdout);
        })
        .run();
    return 0;
}
