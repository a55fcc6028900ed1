'use strict';
// The seed's server written the usual way: the `cluster` module and
// http.createServer. Node reads NODE_CLUSTER_SCHED_POLICY itself when the
// cluster module loads ("rr": the primary accepts every connection and
// hands it to a worker round-robin over IPC; "none": the primary binds one
// socket and sends it to the workers, which accept on it themselves, like
// the seed). It is not overridden here; the policy in effect is printed.
//
// Environment: HOST (default 127.0.0.1), PORT (default 0 = any free port),
// WORKERS (default 4), NODE_CLUSTER_SCHED_POLICY (none | rr; Node's default
// on Linux is rr).
//
// stdout protocol (each line is ONE write, so lines from the primary and
// the workers, which inherit its stdout, never interleave):
//   worker <pid> listening                          each worker
//   policy rr | policy none                         primary, then
//   ready <host>:<port>                             once all workers listen
//   worker <pid> got <C> connections <R> requests   each worker, on stop
//   done                                            primary, after all exit
// SIGTERM or SIGINT to the primary stops everything. Errors go to stderr.
//
// PORT=0: in a cluster the primary does the bind (rr: it listens itself;
// none: it binds a handle and shares it), keyed by address and port, so
// every worker's listen(0) gets the SAME port. The primary checks this and
// fails if the workers report different ports.

const cluster = require('cluster');
const http = require('http');

const HOST = process.env.HOST || '127.0.0.1';
const PORT = parseIntEnv('PORT', 0, 0, 65535);
const WORKERS = parseIntEnv('WORKERS', 4, 1, 1024);
const STOP_TIMEOUT_MS = 10000;

function parseIntEnv(name, def, min, max) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return def;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min || v > max) {
    process.stderr.write(`cluster.js: ${name}=${raw} is not a whole number in ${min}..${max}\n`);
    process.exit(2);
  }
  return v;
}

function line(s) {
  process.stdout.write(s + '\n');
}

// A closed reader of our stdout must not crash anyone with EPIPE.
process.stdout.on('error', () => {});

if (cluster.isPrimary) primary();
else worker();

function primary() {
  const policy = cluster.schedulingPolicy === cluster.SCHED_RR ? 'rr'
    : cluster.schedulingPolicy === cluster.SCHED_NONE ? 'none'
      : `unknown(${cluster.schedulingPolicy})`;
  const workers = [];
  const ports = new Set();
  let listening = 0;
  let exited = 0;
  let stopping = false;
  let ready = false;
  let failed = false;

  function fail(msg) {
    process.stderr.write(`cluster.js: ${msg}\n`);
    for (const w of workers) if (!w.isDead()) w.process.kill('SIGKILL');
    process.exit(1);
  }

  for (let i = 0; i < WORKERS; i++) {
    const w = cluster.fork();
    workers.push(w);
    w.on('message', (m) => {
      if (!m || m.cmd !== 'listening') return;
      listening++;
      ports.add(m.port);
      if (listening === WORKERS && !ready && !stopping) {
        if (ports.size !== 1) fail(`workers listen on different ports: ${[...ports].join(' ')}`);
        ready = true;
        line(`policy ${policy}`);
        line(`ready ${HOST}:${[...ports][0]}`);
      }
    });
    w.on('error', (err) => {
      process.stderr.write(`cluster.js: worker ${w.process.pid}: ${err.message}\n`);
    });
    w.on('exit', (code, signal) => {
      exited++;
      if (!stopping) {
        process.stderr.write(
          `cluster.js: worker ${w.process.pid} exited unexpectedly (code ${code}, signal ${signal})\n`);
        if (!ready) fail('a worker failed before all were listening');
        failed = true;
        stop();
      }
      if (exited === WORKERS) {
        line('done');
        process.exit(failed ? 1 : 0);
      }
    });
  }

  function stop() {
    if (stopping) return;
    stopping = true;
    for (const w of workers) {
      if (w.isDead()) continue;
      // Ask over IPC; fall back to SIGTERM (the worker handles both alike).
      if (w.isConnected()) {
        w.send({ cmd: 'stop' }, (err) => { if (err) w.process.kill('SIGTERM'); });
      } else {
        w.process.kill('SIGTERM');
      }
    }
    setTimeout(() => {
      process.stderr.write('cluster.js: workers did not exit in time, killing them\n');
      for (const w of workers) if (!w.isDead()) w.process.kill('SIGKILL');
      process.exit(1);
    }, STOP_TIMEOUT_MS).unref();
  }

  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

function worker() {
  const body = 'hello nodejs';
  let connections = 0; // server 'connection' events
  let requests = 0; // responses written
  let stopped = false;

  const server = http.createServer((req, res) => {
    requests++;
    res.writeHead(200, {
      'content-length': Buffer.byteLength(body),
      'x-worker': String(process.pid),
    });
    res.end(body);
    // Drain any request body so keep-alive connections stay usable.
    req.resume();
  });
  server.on('connection', (socket) => {
    connections++;
    // Client resets must not kill the worker (http already handles socket
    // errors; this is belt and braces).
    socket.on('error', () => {});
  });
  server.on('clientError', (err, socket) => {
    socket.destroy();
  });
  server.on('error', (err) => {
    process.stderr.write(`cluster.js: worker ${process.pid}: ${err.message}\n`);
    process.exit(1);
  });
  server.listen(PORT, HOST, () => {
    line(`worker ${process.pid} listening`);
    process.send({ cmd: 'listening', port: server.address().port });
  });

  function stop() {
    if (stopped) return;
    stopped = true;
    // One write, synchronous for pipes and files on Linux: flushed before exit.
    line(`worker ${process.pid} got ${connections} connections ${requests} requests`);
    process.exit(0);
  }

  process.on('message', (m) => {
    if (m && m.cmd === 'stop') stop();
  });
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // If the primary dies (even by SIGKILL) the IPC channel closes. The cluster
  // module already exits the worker then; this makes it explicit.
  process.on('disconnect', () => {
    if (stopped) return;
    process.stderr.write(`cluster.js: worker ${process.pid}: primary gone, exiting\n`);
    process.exit(1);
  });
}
