'use strict';
// The seed article's worker, kept faithful: it receives the master's
// listening handle over IPC, calls listen() on it and takes connections
// itself through handle.onconnection (no net.Server, no cluster module).
//
// Changes from the seed (each marked "CHANGE" below):
//   - listen(BACKLOG) with an explicit backlog (the seed's listen() passed
//     undefined, which the TCP binding turns into a backlog of 0);
//   - no per-connection console.log (it would distort the measurement);
//   - the request is READ before answering: data is buffered until a full
//     request head ("\r\n\r\n"), each request gets one response (with an
//     x-worker header), keep-alive and pipelining are supported, and a
//     request with "connection: close" ends the socket after its response;
//   - client resets are survived (socket 'error' handler; an err in
//     onconnection is counted and ignored);
//   - connections and requests are counted and reported on stop:
//     "worker <pid> got <C> connections <R> requests" (one write);
//   - the worker stops on an IPC {cmd:'stop'} message, SIGTERM or SIGINT,
//     and exits on its own when the master goes away (IPC 'disconnect').

const net = require('net');

// CHANGE: explicit backlog (Node's own default for servers is 511).
const BACKLOG = Number(process.env.BACKLOG) > 0 ? Number(process.env.BACKLOG) : 511;

var buf = 'hello nodejs';
// CHANGE: the seed's response, plus an x-worker header; written as latin1
// bytes so content-length is exact.
var res = Buffer.from(
  ['HTTP/1.1 200 OK', 'content-length: ' + buf.length, 'x-worker: ' + process.pid]
    .join('\r\n') + '\r\n\r\n' + buf, 'latin1');

let connections = 0; // onconnection calls with a handle
let requests = 0; // responses written
let acceptErrors = 0; // onconnection calls with err != 0
let stopped = false;
let listenHandle = null;

// A closed reader of our stdout must not crash the worker with EPIPE.
process.stdout.on('error', () => {});

// The seed: process.on('message', function(m, handle) { start(handle); });
process.on('message', function (m, handle) {
  if (m && m.cmd === 'stop') return stop();
  if (handle && !listenHandle) start(handle);
});

// CHANGE: stop on SIGTERM/SIGINT as well (e.g. a signal to the whole
// process group); stop() reports only once.
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

// CHANGE: if the master dies (even by SIGKILL) the IPC channel closes; do
// not linger. The counts cannot be reported to anyone, so exit quietly.
process.on('disconnect', function () {
  if (stopped) return;
  process.stderr.write(`seed-worker ${process.pid}: master gone, exiting\n`);
  process.exit(1);
});

function stop() {
  if (stopped) return;
  stopped = true;
  if (acceptErrors > 0) {
    process.stderr.write(`seed-worker ${process.pid}: ${acceptErrors} accept errors ignored\n`);
  }
  // One write, synchronous for pipes and files on Linux: flushed before exit.
  process.stdout.write(`worker ${process.pid} got ${connections} connections ${requests} requests\n`);
  process.exit(0);
}

function start(server) {
  listenHandle = server;
  // The seed: server.listen();
  const err = server.listen(BACKLOG);
  if (err) {
    process.stderr.write(`seed-worker ${process.pid}: listen failed: ${require('util').getSystemErrorName(err)}\n`);
    process.exit(1);
  }
  server.onconnection = function (err, handle) {
    // CHANGE: no console.log per connection; errors counted and ignored.
    if (err || !handle) {
      acceptErrors++;
      return;
    }
    connections++;
    // CHANGE: readable/writable passed as options too (what net.Server does);
    // the seed's assignment is kept below.
    var socket = new net.Socket({ handle: handle, readable: true, writable: true });
    socket.readable = socket.writable = true;
    serve(socket);
  };
  process.stdout.write(`worker ${process.pid} listening\n`);
  process.send({ cmd: 'listening' });
}

// CHANGE: the seed answered at once with socket.end(res) without reading.
// Here requests are parsed just enough: heads end at "\r\n\r\n"; a
// content-length body, if any, is skipped; each request is answered in
// order; "connection: close" ends the socket after its response.
const CONNECTION_CLOSE = /^connection:[ \t]*([^\r\n]*)/im;
const CONTENT_LENGTH = /^content-length:[ \t]*(\d+)/im;
const MAX_HEAD = 64 * 1024;

function serve(socket) {
  let pending = ''; // latin1: one char per byte
  let skip = 0; // body bytes still to discard
  let closed = false;
  // Client resets (ECONNRESET, EPIPE) must not kill the worker.
  socket.on('error', function () {});
  socket.on('data', function (chunk) {
    if (closed) return;
    pending += chunk.toString('latin1');
    for (;;) {
      if (skip > 0) {
        const n = Math.min(skip, pending.length);
        pending = pending.slice(n);
        skip -= n;
        if (skip > 0) return;
      }
      const end = pending.indexOf('\r\n\r\n');
      if (end < 0) {
        if (pending.length > MAX_HEAD) { closed = true; socket.destroy(); }
        return;
      }
      const head = pending.slice(0, end);
      pending = pending.slice(end + 4);
      const cl = CONTENT_LENGTH.exec(head);
      if (cl) skip = Number(cl[1]);
      const conn = CONNECTION_CLOSE.exec(head);
      const close = conn !== null && /(^|,)[ \t]*close[ \t]*(,|$)/i.test(conn[1]);
      requests++;
      if (close) {
        closed = true;
        socket.end(res);
        return;
      }
      socket.write(res);
    }
  });
}
