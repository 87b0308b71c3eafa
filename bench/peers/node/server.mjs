// Peer server for side-by-side runs: Node.js with the `ws` library.
//
// - GET /echo: every text or binary message is sent back as it came.
// - GET /ws:   every text or binary message is sent to every client connected
//              to /ws, the sender included (what `ringcast-load fanout
//              --protocol broadcast` drives).
//
// Written as ws's README does it (noServer servers behind one http server,
// broadcast by iterating `wss.clients`), with permessage-deflate off (ws's
// server default, said explicitly) and `bufferutil` installed when it can be
// (ws's optional native masking, recommended by its README for speed).
// Node runs JavaScript on one thread, like every other peer here.
//
//   node server.mjs --listen 127.0.0.1:0     prints `listening on ADDR` when ready

import http from 'node:http';
import { WebSocketServer, WebSocket } from 'ws';

function usage() {
  console.error('usage: node server.mjs [--listen ADDR]   (default 127.0.0.1:0)');
  process.exit(2);
}

let listen = '127.0.0.1:0';
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--listen' && i + 1 < args.length) listen = args[++i];
  else usage();
}
const colon = listen.lastIndexOf(':');
if (colon < 0) usage();
const host = listen.slice(0, colon).replace(/^\[|\]$/g, '');
const port = Number(listen.slice(colon + 1));

const options = { noServer: true, perMessageDeflate: false };
const echo = new WebSocketServer(options);
const broadcast = new WebSocketServer(options);

echo.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});

broadcast.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    for (const client of broadcast.clients) {
      if (client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary });
    }
  });
});

const server = http.createServer((req, res) => {
  res.writeHead(404, { 'Content-Type': 'text/plain' });
  res.end('not found\n');
});

server.on('upgrade', (req, socket, head) => {
  const path = req.url.split('?')[0];
  const wss = path === '/echo' ? echo : path === '/ws' ? broadcast : null;
  if (wss === null) {
    socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
});

server.listen({ host, port, backlog: 4096 }, () => {
  const { address, port: bound } = server.address();
  const shown = address.includes(':') ? `[${address}]` : address;
  console.log(`listening on ${shown}:${bound}`);
});
