// Node `ws` echo server for ringcast-load's interop test.
//
// Prints `listening PORT` once bound to 127.0.0.1:0. Every message of at
// least 2 bytes is echoed back as two frames (a fragmented message), and
// every connection is pinged every 50 ms. Exits after argv[2] seconds
// (default 60). `ws` is loaded with require() so that NODE_PATH applies (ES
// module imports ignore it).
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { WebSocketServer } = require('ws');

const lifetime = Number(process.argv[2] ?? 60);
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
wss.on('listening', () => console.log(`listening ${wss.address().port}`));
wss.on('connection', (ws) => {
  const pinger = setInterval(() => ws.ping('p'), 50);
  ws.on('close', () => clearInterval(pinger));
  ws.on('error', () => clearInterval(pinger));
  ws.on('message', (data, isBinary) => {
    if (data.length >= 2) {
      const half = data.length >> 1;
      ws.send(data.subarray(0, half), { binary: isBinary, fin: false });
      ws.send(data.subarray(half), { binary: isBinary, fin: true });
    } else {
      ws.send(data, { binary: isBinary });
    }
  });
});
setTimeout(() => process.exit(0), lifetime * 1000);
